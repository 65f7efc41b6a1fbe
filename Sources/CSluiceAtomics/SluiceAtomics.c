// Nothing to compile: SluiceAtomics.h is all static inline functions.
