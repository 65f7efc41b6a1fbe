#ifndef SLUICE_ATOMICS_H
#define SLUICE_ATOMICS_H

#include <stdint.h>

// The store's one use of C (see ARCHITECTURE.md, "Why a C header in the store"): reading a bucket's 128-bit state
// as two 64-bit atomic loads, and prefetching a slot (Swift has no prefetch). Swift's Atomic<WordPair>.load is a
// locked cmpxchg16b on x86-64, a write to the cache line, which costs as much as the compare-and-exchange that
// follows it on every decision. Two plain loads may see halves of different states ("torn"): callers treat the
// result as a guess, validated by the 16-byte compare-and-exchange that writes, or by one full load before
// answering from it without writing.

typedef struct {
    uint64_t first;
    uint64_t second;
} sluice_word_pair;

// Each half read with a relaxed atomic load; `state` is the 16-byte-aligned address of an Atomic<WordPair>.
static inline __attribute__((always_inline)) sluice_word_pair sluice_load_halves(const void *state) {
    const uint64_t *words = (const uint64_t *)state;
    sluice_word_pair pair;
    pair.first = __atomic_load_n(&words[0], __ATOMIC_RELAXED);
    pair.second = __atomic_load_n(&words[1], __ATOMIC_RELAXED);
    return pair;
}

// Asks for the cache line at `address` ahead of a compare-and-exchange on it (for writing, kept in every cache
// level), so that a batch of decisions over keys not in cache waits for their memory together rather than one
// after another. A hint: it never faults, whatever the address.
static inline __attribute__((always_inline)) void sluice_prefetch_for_write(const void *address) {
    __builtin_prefetch(address, 1, 3);
}

#endif
