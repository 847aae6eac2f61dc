import OxydraCore

/// The model catalog: the built-in one extended by `model_catalog.json` files in
/// `/etc/oxydra/`, `~/.config/oxydra/` and `./.oxydra/` (later files override earlier ones).
public enum CatalogLoader {
    public static let fileName = "model_catalog.json"

    /// The merged catalog and the files that contributed to it (display paths).
    public static func load(paths: ConfigSearchPaths, display: DisplayPath) throws(CatalogError) -> (
        catalog: ModelCatalog, files: [String]
    ) {
        var catalog = ModelCatalog.builtIn
        var files: [String] = []
        for directory in paths.directories {
            let path = directory + "/" + fileName
            let shown = display.render(path)
            let text: String?
            do {
                text = try ConfigFiles.read(path, source: .file(shown))
            } catch {
                throw .invalidFile(origin: shown, reason: error.issues.first?.message ?? "\(error)")
            }
            guard let text else { continue }
            catalog = catalog.merging(try ModelCatalog(jsonData: Data(text.utf8), origin: shown))
            files.append(shown)
        }
        return (catalog, files)
    }
}

/// The model chosen by `selection`, checked against the catalog before any network I/O.
public enum ModelSelection {
    /// The descriptor for `selection.model` on `selection.provider`, with the entry's overrides
    /// applied; unknown models pass only with `catalog.skip_catalog_validation` (global or per entry).
    public static func resolve(_ config: AgentConfig, catalog: ModelCatalog) throws(ProviderError) -> ModelDescriptor {
        let name = config.selection.provider
        guard let (_, entry, type) = config.selectedProvider else {
            throw .requestFailed(provider: ProviderID(name), message: "provider `\(name)` is not configured")
        }
        let skip = config.catalog.skipCatalogValidation || (entry.skipCatalogValidation ?? false)
        do {
            return try catalog.resolve(
                ModelID(config.selection.model), provider: entry.catalogProvider ?? type.defaultCatalogProvider,
                skipValidation: skip, overrides: entry.modelOverrides)
        } catch {
            throw .unknownModel(provider: ProviderID(name), error)
        }
    }
}
