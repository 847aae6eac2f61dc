import Foundation
import Testing

@testable import OxydraCore

@Suite("Model catalog")
struct ModelCatalogTests {
    let catalog = ModelCatalog.builtIn

    @Test func builtInCoversTheThreeProvidersWithUniqueIDs() {
        #expect(Set(catalog.providers.keys) == ["openai", "anthropic", "google"])
        for (provider, models) in catalog.providers {
            let ids = models.flatMap { [$0.id] + $0.aliases }
            #expect(Set(ids).count == ids.count, "duplicate id in \(provider)")
            #expect(!models.isEmpty)
            for model in models {
                #expect(model.capabilities.contextTokens > 0 && model.capabilities.outputTokens > 0)
                #expect(model.capabilities.outputTokens <= model.capabilities.contextTokens)
                #expect(model.pricing != nil, "\(model.id) has no price")
                #expect(model.capabilities.inputModalities.contains(.text))
            }
        }
        #expect(catalog.sources["openai"]?.hasPrefix("https://") == true)
    }

    @Test func seedDefaultsAreInTheCatalog() throws {
        let model = try catalog.model("gpt-4o-mini", provider: "openai")
        #expect(model.capabilities.contextTokens == 128_000)
        #expect(model.capabilities.outputTokens == 16_384)
        #expect(
            model.pricing == ModelPricing(inputPerMillion: 0.15, outputPerMillion: 0.6, cachedInputPerMillion: 0.075))
        #expect(model.capabilities.accepts(.image))
        _ = try catalog.model("claude-3-5-haiku-latest", provider: "anthropic")
    }

    @Test func lookupByAlias() throws {
        let model = try catalog.model("claude-sonnet-4-5-20250929", provider: "anthropic")
        #expect(model.id == "claude-sonnet-4-5")
        #expect(model.capabilities.accepts(.pdf))
    }

    @Test func unknownModelNamesProviderAndSuggests() {
        #expect {
            try catalog.model("gpt-4o-mni", provider: "openai")
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix(
                "unknown model `gpt-4o-mni` for catalog provider `openai`; did you mean `gpt-4o-mini`")
                && text.hasSuffix(
                    "for a local or custom model set `catalog.skip_catalog_validation = true` "
                        + "or add it to ./.oxydra/model_catalog.json")
        }
    }

    @Test func unknownProvider() {
        #expect {
            try catalog.model("x", provider: "gogle")
        } throws: { error in
            "\(error)".hasPrefix(
                "no model catalog for provider `gogle` (known: anthropic, google, openai); did you mean `google`?")
        }
    }

    @Test func skipValidationAdmitsUnknownModelsWithDefaultsAndOverrides() throws {
        let synthetic = try catalog.resolve("llama3.1:8b", provider: "openai", skipValidation: true)
        #expect(synthetic.isSynthetic)
        #expect(synthetic.capabilities.contextTokens == 128_000)
        #expect(synthetic.capabilities.outputTokens == 16_384)
        #expect(synthetic.pricing == nil)
        let tuned = try catalog.resolve(
            "qwen3:4b", provider: "openai", skipValidation: true,
            overrides: ModelOverrides(contextTokens: 32768, inputModalities: [.image]))
        #expect(tuned.capabilities.contextTokens == 32768)
        #expect(tuned.capabilities.inputModalities == [.text, .image])
        #expect(throws: CatalogError.self) {
            try catalog.resolve("llama3.1:8b", provider: "openai", skipValidation: false)
        }
        // Known models keep their catalog facts even with the flag.
        #expect(try catalog.resolve("gpt-4o", provider: "openai", skipValidation: true).isSynthetic == false)
    }

    @Test func userCatalogExtendsAndOverrides() throws {
        let overlay = try ModelCatalog(
            jsonData: Data(
                #"""
                {"format_version": 1, "providers": {
                  "openai": {"models": [{"id": "gpt-4o-mini", "context_tokens": 64000, "price": {"input": 1, "output": 2}}]},
                  "ollama": {"models": [{"id": "llama3.1:8b", "context_tokens": 131072, "input": ["text"]}]}
                }}
                """#.utf8), origin: "./.oxydra/model_catalog.json")
        let merged = catalog.merging(overlay)
        let replaced = try merged.model("gpt-4o-mini", provider: "openai")
        #expect(replaced.capabilities.contextTokens == 64000)
        #expect(replaced.capabilities.outputTokens == ModelCatalog.defaultOutputTokens)
        #expect(replaced.pricing?.inputPerMillion == 1)
        #expect(try merged.model("gpt-4o", provider: "openai").capabilities.contextTokens == 128_000)
        #expect(try merged.model("llama3.1:8b", provider: "ollama").capabilities.contextTokens == 131_072)
    }

    @Test(arguments: [
        ("{", "invalid model catalog ./x.json: not valid JSON"),
        (
            #"{"format_version": 2, "providers": {}}"#,
            "invalid model catalog ./x.json: format_version 2 is not supported; this Oxydra reads 1"
        ),
        (
            #"{"format_version": 1, "providers": {"p": {"models": [{"id": "m", "context_tokens": 0}]}}}"#,
            "invalid model catalog ./x.json: model `p/m`: context_tokens must be greater than 0"
        ),
        (
            #"{"format_version": 1, "providers": {"p": {"models": [{"id": "m"}, {"id": "n", "aliases": ["m"]}]}}}"#,
            "invalid model catalog ./x.json: model id `p/m` appears twice"
        ),
        (
            #"{"format_version": 1, "providers": {"p": {"models": [{"name": "m"}]}}}"#,
            "invalid model catalog ./x.json: missing key `id` at providers.p.models[0]"
        ),
        (
            #"{"format_version": 1, "providers": {"p": {"models": [{"id": "m", "input": ["smell"]}]}}}"#,
            "invalid model catalog ./x.json:"
        ),
    ])
    func invalidCatalogFiles(_ text: String, _ expectedPrefix: String) {
        #expect {
            try ModelCatalog(jsonData: Data(text.utf8), origin: "./x.json")
        } throws: { error in
            "\(error)".hasPrefix(expectedPrefix)
        }
    }

    @Test func pricingComputesDollars() {
        let pricing = ModelPricing(inputPerMillion: 2.5, outputPerMillion: 10)
        #expect(abs(pricing.cost(of: Usage(promptTokens: 1000, completionTokens: 500)) - 0.0075) < 1e-12)
    }

    @Test(arguments: [
        ("image/png", InputModality.image), ("IMAGE/JPEG", .image), ("audio/ogg", .audio), ("video/mp4", .video),
        ("application/pdf", .pdf), ("text/plain", .text), ("application/zip", .document),
    ])
    func modalityFromMIMEType(_ mime: String, _ expected: InputModality) {
        #expect(InputModality(mimeType: mime) == expected)
    }
}
