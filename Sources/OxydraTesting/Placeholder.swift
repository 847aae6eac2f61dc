import OxydraCore
