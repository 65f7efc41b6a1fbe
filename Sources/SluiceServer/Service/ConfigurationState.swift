import Crypto
public import SluiceConfig
import SluiceCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The configuration in force and the file it came from: what a SIGHUP reload rereads and the admin API
/// writes back, one change at a time.
///
/// Every change goes through here, under one lock held for the whole change (reading the file, checking it,
/// writing it, putting the policies in force), so a reload and an admin write never interleave. The decision
/// path never takes this lock: it reads the ``PolicyRegistry``.
public final class ConfigurationState: Sendable {
    /// What is in force.
    public struct Current: Sendable {
        /// The whole configuration, its policies those in force.
        public let configuration: SluiceConfiguration
        /// The SHA-256 of the file as last read or written; nil without a file.
        let fileDigest: [UInt8]?
        /// Bumped at every change put in force (a reload, an admin write).
        public let revision: UInt64
    }

    /// Why a change was not made; nothing changed in any case.
    public enum ChangeError: Error, Sendable {
        /// The new policies do not make a valid configuration with the rest of the file.
        case invalid(ConfigurationErrors)
        /// Sluice runs on its embedded default: there is no file to keep the change in.
        case noFile
        /// The file changed on disk since Sluice last read or wrote it.
        case changedOnDisk
        /// The file could not be read, rewritten safely, or written.
        case file(String)
    }

    /// The configuration file, or nil on the embedded default.
    public let path: String?
    let registry: PolicyRegistry
    /// Differs at every start, so an ETag never survives a restart into a different configuration.
    private let boot = UInt64.random(in: 1...UInt64.max)
    private let current: Locked<Current>

    /// Creates the state of a process that started with `configuration`, read from `text` of the file at `path`
    /// (both nil on the embedded default), whose policies `registry` holds.
    public init(path: String?, configuration: SluiceConfiguration, text: String?, registry: PolicyRegistry) {
        self.path = path
        self.registry = registry
        current = Locked(Current(configuration: configuration, fileDigest: text.map(Self.digest), revision: 1))
    }

    /// What is in force now.
    public var snapshot: Current { current.withLock { $0 } }

    /// The strong ETag of `current`'s policies: changes at every reload and admin write, and at every start.
    public func etag(_ current: Current) -> String {
        "\"" + String(boot, radix: 16) + "-" + String(current.revision) + "\""
    }

    /// Rereads the file and puts it in force if `accept` (given the new configuration and what is in force)
    /// does not throw: a SIGHUP reload. Returns the configuration put in force.
    func reload(
        accept: (SluiceConfiguration, Current) throws(ConfigurationError) -> Void
    ) throws(ConfigurationError) -> SluiceConfiguration {
        guard let path else { throw ConfigurationError(.unreadableFile, "no configuration file: Sluice runs on its embedded default") }
        return try current.withLock { (current: inout Current) throws(ConfigurationError) -> SluiceConfiguration in
            let (configuration, text) = try SluiceConfiguration.loadDocument(path: path)
            try accept(configuration, current)
            put(configuration, fileDigest: Self.digest(text), in: &current)
            return configuration
        }
    }

    /// Puts `policies` in force after writing them to the file, if `accept` (given what is in force) agrees;
    /// returns what is then in force.
    ///
    /// The file is read again and must be as Sluice last saw it; its `policies` section is replaced, the rest
    /// kept (``ConfigurationText/replacingPolicies(in:with:)``), the result read back and compared with what
    /// was meant, then written atomically (a temporary file, fsync, rename, fsync of the folder) before the
    /// policies go in force.
    func change<Refusal: Error>(
        accept: (Current) -> Result<[Policy], Refusal>
    ) -> Result<Current, ChangeOrRefusal<Refusal>> {
        current.withLock { current in
            let policies: [Policy]
            switch accept(current) {
            case .success(let accepted): policies = accepted
            case .failure(let refusal): return .failure(.refused(refusal))
            }
            let configuration: SluiceConfiguration
            do throws(ConfigurationErrors) {
                configuration = try current.configuration.replacing(policies: policies)
            } catch {
                return .failure(.failed(.invalid(error)))
            }
            guard let path else { return .failure(.failed(.noFile)) }
            let digest: [UInt8]
            do throws(ChangeError) {
                digest = try Self.rewrite(path: path, expecting: current.fileDigest, to: configuration)
            } catch {
                return .failure(.failed(error))
            }
            put(configuration, fileDigest: digest, in: &current)
            return .success(current)
        }
    }

    /// A change's outcome when it was not made: refused by the caller's check, or failed here.
    public enum ChangeOrRefusal<Refusal: Error>: Error {
        case refused(Refusal)
        case failed(ChangeError)
    }

    private func put(_ configuration: SluiceConfiguration, fileDigest: [UInt8]?, in current: inout Current) {
        registry.replace(
            with: configuration.policySet, forwardAuth: ForwardAuthRules(configuration.forwardAuth, policies: configuration.policySet)
        )
        current = Current(configuration: configuration, fileDigest: fileDigest, revision: current.revision + 1)
    }

    // MARK: The file

    static func digest(_ text: String) -> [UInt8] { Array(SHA256.hash(data: Array(text.utf8))) }

    /// Writes `configuration`'s policies into the file at `path`, which must still hash to `expected`; returns
    /// the new file's digest.
    private static func rewrite(path: String, expecting expected: [UInt8]?, to configuration: SluiceConfiguration) throws(ChangeError) -> [UInt8] {
        let text: String
        do {
            text = try SluiceConfiguration.loadDocument(path: path).text
        } catch {
            // Unreadable, or no longer valid: either way not what Sluice last read.
            throw error.code == .unreadableFile ? .file(error.message) : .changedOnDisk
        }
        guard digest(text) == expected else { throw .changedOnDisk }
        let rewritten = ConfigurationText.replacingPolicies(in: text, with: configuration.policies)
        do {
            guard try SluiceConfiguration.parse(yaml: rewritten, asFileAt: path) == configuration else {
                throw ConfigurationError(.invalidValue, "the rewritten file reads back differently")
            }
        } catch {
            throw .file("cannot rewrite the policies section of \(path) safely (\(error)); change the file by hand and reload")
        }
        try write(rewritten, to: path)
        return digest(rewritten)
    }

    /// Replaces the file at `path` (the file a symbolic link names, if it is one) with `text`: a temporary file
    /// beside it with the same permissions, written and synced, renamed over it, and the folder synced.
    static func write(_ text: String, to path: String) throws(ChangeError) {
        var resolved = path
        if let real = realpath(path, nil) {
            resolved = String(cString: real)
            free(real)
        }
        let folder = resolved.lastIndex(of: "/").map { String(resolved[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
        var status = stat()
        let mode = stat(resolved, &status) == 0 ? status.st_mode & 0o7777 : 0o644
        let temporary = "\(resolved).sluice-\(getpid()).tmp"
        func failure(_ action: String) -> ChangeError { .file("cannot \(action) \(temporary): \(String(cString: strerror(errno)))") }
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw failure("create") }
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeMutableBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            guard written > 0 else {
                let error = failure("write")
                close(descriptor)
                unlink(temporary)
                throw error
            }
            offset += written
        }
        guard fsync(descriptor) == 0 else {
            let error = failure("sync")
            close(descriptor)
            unlink(temporary)
            throw error
        }
        close(descriptor)
        guard rename(temporary, resolved) == 0 else {
            let error = ChangeError.file("cannot replace \(resolved): \(String(cString: strerror(errno)))")
            unlink(temporary)
            throw error
        }
        let directory = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
    }
}
