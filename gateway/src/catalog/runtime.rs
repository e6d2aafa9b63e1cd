//! Which runtime runs a handler. Decided by discovery from the handler file's extension,
//! read by the policy defaults (concurrency) and by the pool's launcher.

/// A handler's runtime. `TypeScript` runs on Node once compiled; `Rust` is a handler
/// built with the SDK crate into a worker binary, `Go` one built with edgefn's Go harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    Python,
    Node,
    TypeScript,
    Php,
    Lua,
    Rust,
    Go,
}

impl Runtime {
    pub const ALL: [Runtime; 7] = [
        Runtime::Python,
        Runtime::Node,
        Runtime::TypeScript,
        Runtime::Php,
        Runtime::Lua,
        Runtime::Rust,
        Runtime::Go,
    ];

    /// The label used in logs, metrics, `edgefn check` and `event.context.runtime`.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Python => "python",
            Runtime::Node => "node",
            Runtime::TypeScript => "typescript",
            Runtime::Php => "php",
            Runtime::Lua => "lua",
            Runtime::Rust => "rust",
            Runtime::Go => "go",
        }
    }

    /// The handler file extension (without the dot) that selects this runtime.
    pub fn extension(self) -> &'static str {
        match self {
            Runtime::Python => "py",
            Runtime::Node => "js",
            Runtime::TypeScript => "ts",
            Runtime::Php => "php",
            Runtime::Lua => "lua",
            Runtime::Rust => "rs",
            Runtime::Go => "go",
        }
    }

    pub fn from_extension(ext: &str) -> Option<Runtime> {
        Runtime::ALL.into_iter().find(|r| r.extension() == ext)
    }

    /// In-flight requests per worker when `fn.config.json` says nothing: event-loop
    /// runtimes interleave requests, the others run one at a time.
    pub fn default_concurrency(self) -> usize {
        match self {
            Runtime::Node | Runtime::TypeScript => 16,
            Runtime::Python | Runtime::Php | Runtime::Lua | Runtime::Rust | Runtime::Go => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_round_trip() {
        for r in Runtime::ALL {
            assert_eq!(Runtime::from_extension(r.extension()), Some(r));
        }
        assert_eq!(Runtime::from_extension("rb"), None);
    }
}
