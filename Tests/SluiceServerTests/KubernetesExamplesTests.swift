import Foundation
import SluiceTestSupport
import Testing

/// `examples/kubernetes/`: the manifests are valid Kubernetes objects (checked offline against the API's schemas
/// by PyPI's kubernetes-validate, strictly: an unknown field is an error), and the configuration each ConfigMap
/// carries is one `sluice validate` accepts, at the path the sidecar is told to read. What this cannot show, with
/// no cluster here: that a cluster schedules the pods, that the probes pass, or that the image exists.
struct KubernetesExamplesTests {
    static let folder = packageRoot + "/examples/kubernetes/"
    static let manifests = ["sidecar.yaml", "sidecar-redis.yaml"]

    @Test("The manifests are valid Kubernetes objects (kubernetes-validate --strict, Kubernetes 1.37)", .requiresPython("kubernetes_validate"))
    func manifestsValidate() async throws {
        let validator = packageRoot + "/.venv-e2e/bin/kubernetes-validate"
        let result = try await runProgram([validator, "--strict", "-k", "1.37.0"] + Self.manifests.map { Self.folder + $0 })
        #expect(result.status == 0, "\(result.output)\(result.error)")
        // Every object was checked: 3 in sidecar.yaml, 7 in sidecar-redis.yaml.
        #expect(result.output.components(separatedBy: " passed for resource ").count - 1 == 10, "\(result.output)")
    }

    @Test("Each ConfigMap's sluice.yaml passes `sluice validate`, and the sidecar reads it where the ConfigMap is mounted", arguments: manifests)
    func configurationsValidate(manifest: String) async throws {
        let text = try String(contentsOfFile: Self.folder + manifest, encoding: .utf8)
        var configuration = try #require(Self.configMapFile(in: text), "no `sluice.yaml: |` block in \(manifest)")
        #expect(text.contains("args: [\"serve\", \"--config\", \"/etc/sluice/sluice.yaml\""))
        #expect(text.contains("mountPath: /etc/sluice, readOnly: true"))
        let directory = try temporaryDirectory("k8s")
        defer { try? FileManager.default.removeItem(at: directory) }
        // The Secret's file, which the pod mounts: here a file of our own with the same kind of content.
        let secretPath = "/run/secrets/sluice-redis/password"
        if configuration.contains(secretPath) {
            let secret = directory.appendingPathComponent("password")
            try "a-test-password\n".write(to: secret, atomically: true, encoding: .utf8)
            configuration = configuration.replacingOccurrences(of: secretPath, with: secret.path)
        }
        let file = directory.appendingPathComponent("sluice.yaml")
        try configuration.write(to: file, atomically: true, encoding: .utf8)
        let result = try await runProgram([External.sluiceBinary, "validate", file.path])
        #expect(result.status == 0, "\(result.output)\(result.error)")
        #expect(result.output.contains(": ok, "), "\(result.output)")
    }

    /// The literal block under `sluice.yaml: |`, its indentation removed.
    static func configMapFile(in manifest: String) -> String? {
        let lines = manifest.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "sluice.yaml: |" }) else { return nil }
        let keyIndent = lines[start].prefix { $0 == " " }.count
        var block: [Substring] = []
        for line in lines[(start + 1)...] {
            let indent = line.prefix { $0 == " " }.count
            if !line.trimmingCharacters(in: .whitespaces).isEmpty && indent <= keyIndent { break }
            block.append(line)
        }
        let blockIndent = block.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map { $0.prefix { $0 == " " }.count }.min() ?? 0
        return block.map { String($0.dropFirst(min(blockIndent, $0.count))) }.joined(separator: "\n")
    }
}
