//! tcpdump-style BPF filters on file input, compiled by libpcap (through the `pcap` crate) once
//! per link type met in the input.

use anyhow::{Context, Result};
use pcap::{BpfProgram, Capture, Linktype};
use std::collections::HashMap;

pub struct Filter {
    expr: String,
    programs: HashMap<u32, Option<BpfProgram>>,
}

impl Filter {
    /// Checks the expression now (against Ethernet) so a typo fails before any file is read.
    pub fn new(expr: &str) -> Result<Filter> {
        let mut f = Filter {
            expr: expr.to_owned(),
            programs: HashMap::new(),
        };
        let eth =
            compile(expr, 1).with_context(|| format!("invalid filter expression '{expr}'"))?;
        f.programs.insert(1, Some(eth));
        Ok(f)
    }

    /// Whether the frame passes. A link type the expression cannot be compiled for passes
    /// nothing (libpcap says why once per link type, on stderr).
    pub fn matches(&mut self, linktype: u32, frame: &[u8]) -> bool {
        let expr = &self.expr;
        let prog = self
            .programs
            .entry(linktype)
            .or_insert_with(|| match compile(expr, linktype) {
                Ok(p) => Some(p),
                Err(e) => {
                    eprintln!(
                        "sipcdr: filter '{expr}' does not apply to link type {linktype}: {e:#}"
                    );
                    None
                }
            });
        prog.as_ref().is_some_and(|p| p.filter(frame))
    }
}

fn compile(expr: &str, linktype: u32) -> Result<BpfProgram> {
    // libpcap wants a DLT value, which differs from the file's LINKTYPE value for raw IP.
    let dlt = match linktype {
        101 => 12, // LINKTYPE_RAW → DLT_RAW (Linux value)
        other => other,
    };
    let lt = i32::try_from(dlt).context("link type out of range")?;
    let cap = Capture::dead(Linktype(lt)).context("libpcap cannot open a dead handle")?;
    Ok(cap.compile(expr, true)?)
}
