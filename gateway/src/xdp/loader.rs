//! The embedded XDP object and its lifetime in the kernel: load, attach (driver with a
//! fallback to skb), test-run crafted frames, detach. Map contents are handled in
//! [`super::maps`]; this file owns the only `unsafe`-adjacent aya calls of the gateway.

use aya::maps::{Array, HashMap, LpmTrie, MapData, MapError, PerCpuArray};
use aya::programs::xdp::XdpLinkId;
use aya::programs::{ProgramError, TestRun, TestRunOptions, Xdp, XdpMode};
use aya::{Ebpf, EbpfError};
use gateway_common::{map_names, SourceKey, XdpSettings, PROGRAM_NAME};

use crate::config::xdp::XdpMode as ConfigMode;

/// Why the XDP layer is not active. Every variant names what failed, so the fallback line in
/// the log and on `/readyz` says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("XDP program not built into this binary: {reason}")]
    NotBuilt { reason: &'static str },
    #[error("cannot load the XDP object: {source}")]
    Load {
        #[source]
        source: EbpfError,
    },
    #[error("the XDP object has no program named {name}")]
    MissingProgram { name: &'static str },
    #[error("the XDP object has no map named {name}")]
    MissingMap { name: &'static str },
    #[error("XDP map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("the kernel refused the XDP program: {source}")]
    Program {
        #[source]
        source: ProgramError,
    },
    #[error("cannot attach XDP to {interface} in {mode} mode: {source}")]
    Attach {
        interface: String,
        mode: &'static str,
        #[source]
        source: ProgramError,
    },
}

impl XdpError {
    /// The message with every underlying cause (aya nests the errno two levels down), plus a
    /// hint when the cause is a missing privilege: this is what the fallback line shows.
    pub fn describe(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            let t = c.to_string();
            if !text.contains(&t) {
                text.push_str(": ");
                text.push_str(&t);
            }
            cause = c.source();
        }
        if text.contains("Operation not permitted") {
            text.push_str(" (needs root, or CAP_BPF + CAP_NET_ADMIN)");
        }
        text
    }
}

/// The compiled object, or why it is missing (see `gateway/build.rs`).
#[cfg(not(edgefn_no_ebpf))]
pub fn object() -> Result<&'static [u8], XdpError> {
    Ok(aya::include_bytes_aligned!(concat!(
        env!("OUT_DIR"),
        "/gateway-ebpf"
    )))
}

#[cfg(edgefn_no_ebpf)]
pub fn object() -> Result<&'static [u8], XdpError> {
    Err(XdpError::NotBuilt {
        reason: env!("EDGEFN_EBPF_MISSING"),
    })
}

/// Typed handles on the program's maps, taken out of the [`Ebpf`] once at load.
pub(crate) struct Maps {
    pub config: Array<MapData, XdpSettings>,
    pub sources: HashMap<MapData, SourceKey, u64>,
    pub allow_v4: LpmTrie<MapData, [u8; 4], u8>,
    pub allow_v6: LpmTrie<MapData, [u8; 16], u8>,
    pub deny_v4: LpmTrie<MapData, [u8; 4], u8>,
    pub deny_v6: LpmTrie<MapData, [u8; 16], u8>,
    pub counters: PerCpuArray<MapData, u64>,
}

/// The loaded (and possibly attached) XDP program with its maps. Dropping it detaches the
/// program and frees the maps.
pub struct XdpProgram {
    ebpf: Ebpf,
    pub(crate) maps: Maps,
    link: Option<XdpLinkId>,
}

impl std::fmt::Debug for XdpProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpProgram")
            .field("attached", &self.link.is_some())
            .finish()
    }
}

fn take<M>(ebpf: &mut Ebpf, name: &'static str) -> Result<M, XdpError>
where
    M: TryFrom<aya::maps::Map, Error = MapError>,
{
    let map = ebpf.take_map(name).ok_or(XdpError::MissingMap { name })?;
    M::try_from(map).map_err(|source| XdpError::Map { name, source })
}

impl XdpProgram {
    /// Loads the embedded object into the kernel (verifier included) without attaching it.
    /// Needs CAP_BPF (root); the error says when the kernel refuses.
    pub fn load() -> Result<XdpProgram, XdpError> {
        let mut ebpf = Ebpf::load(object()?).map_err(|source| XdpError::Load { source })?;
        let maps = Maps {
            config: take(&mut ebpf, map_names::CONFIG)?,
            sources: take(&mut ebpf, map_names::SOURCES)?,
            allow_v4: take(&mut ebpf, map_names::ALLOW_V4)?,
            allow_v6: take(&mut ebpf, map_names::ALLOW_V6)?,
            deny_v4: take(&mut ebpf, map_names::DENY_V4)?,
            deny_v6: take(&mut ebpf, map_names::DENY_V6)?,
            counters: take(&mut ebpf, map_names::COUNTERS)?,
        };
        let mut prog = XdpProgram {
            ebpf,
            maps,
            link: None,
        };
        prog.program()?
            .load()
            .map_err(|source| XdpError::Program { source })?;
        Ok(prog)
    }

    fn program(&mut self) -> Result<&mut Xdp, XdpError> {
        let missing = XdpError::MissingProgram { name: PROGRAM_NAME };
        let p = self.ebpf.program_mut(PROGRAM_NAME).ok_or(missing)?;
        p.try_into().map_err(|source| XdpError::Program { source })
    }

    /// Attaches to `interface`. `driver` asks for native XDP explicitly (the kernel's default
    /// would silently pick generic mode) and falls back to `skb` with a warning. Returns the
    /// mode in effect.
    pub fn attach(&mut self, interface: &str, mode: ConfigMode) -> Result<&'static str, XdpError> {
        if mode == ConfigMode::Driver {
            match self.program()?.attach(interface, XdpMode::Driver) {
                Ok(link) => {
                    self.link = Some(link);
                    return Ok("driver");
                }
                Err(e) => tracing::warn!(
                    interface, error = %e,
                    "native (driver) XDP attach failed; falling back to skb (generic) mode"
                ),
            }
        }
        let link = self
            .program()?
            .attach(interface, XdpMode::Skb)
            .map_err(|source| XdpError::Attach {
                interface: interface.to_string(),
                mode: "skb",
                source,
            })?;
        self.link = Some(link);
        Ok("skb")
    }

    /// Detaches from the interface (also done on drop).
    pub fn detach(&mut self) -> Result<(), XdpError> {
        if let Some(link) = self.link.take() {
            self.program()?
                .detach(link)
                .map_err(|source| XdpError::Program { source })?;
        }
        Ok(())
    }

    /// Runs the program once on `frame` with BPF_PROG_TEST_RUN, returning the XDP action
    /// (`XDP_PASS` = 2, `XDP_DROP` = 1). Maps are shared with the attached program.
    pub fn test_run(&mut self, frame: &[u8]) -> Result<u32, XdpError> {
        Ok(self.test_run_repeat(frame, 1)?.0)
    }

    /// Runs the program `repeat` times on `frame` in the kernel; returns the last action
    /// and the kernel's average time per run (the program's own cost, no driver).
    pub fn test_run_repeat(
        &mut self,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(u32, std::time::Duration), XdpError> {
        let opts = TestRunOptions {
            data_in: Some(frame),
            repeat,
            ..TestRunOptions::default()
        };
        let result = self
            .program()?
            .test_run(opts)
            .map_err(|source| XdpError::Program { source })?;
        Ok((result.return_value, result.duration))
    }
}

/// `XDP_DROP` and `XDP_PASS`, for callers of [`XdpProgram::test_run`].
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
