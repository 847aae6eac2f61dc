/// This build's version: the tag of the guest images it builds and expects.
public enum OxydraVersion {
    public static let current = "0.5.0"
}
