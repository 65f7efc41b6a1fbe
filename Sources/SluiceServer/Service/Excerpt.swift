/// At most 64 characters of client input, for error replies and logs: a client cannot make either as
/// long as it likes.
func excerpt(_ text: some StringProtocol) -> String {
    text.count <= 64 ? String(text) : String(text.prefix(64)) + "..."
}
