//! What the engine and a sandbox process say to each other over the process's standard input
//! and output: one job, then one reply, each a JSON document framed by its length (4 bytes,
//! big-endian).

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The largest frame either side accepts: a message under the body limit plus the outputs'
/// size limit, with room for the JSON around them.
pub(crate) const MAX_FRAME_BYTES: usize = 128 * 1024 * 1024;

/// One job for a sandbox process.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub(crate) enum Job {
    /// A jq program on `input`: its outputs (at most `max_outputs`), or with `None`, whether
    /// its first output is truthy.
    #[serde(rename_all = "camelCase")]
    Jq { program: String, input: Value, max_outputs: Option<usize>, max_nesting: usize },
    /// A Rhai script on `input` (seen as `msg`).
    Rhai { script: String, input: Value, limits: RhaiLimits },
}

/// The limits a Rhai script runs under besides its process's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RhaiLimits {
    /// Wall-clock time, in milliseconds.
    pub time_ms: u64,
    /// Largest string, and (divided by 64) largest array or map, in bytes.
    pub memory_bytes: u64,
    /// Rhai operations.
    pub operations: u64,
    /// Deepest nesting of the result's arrays and maps.
    pub max_nesting: usize,
}

/// What a job produced.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Reply {
    /// The output values.
    Ok(Vec<Value>),
    /// Why the job failed, as a plain message.
    Err(String),
}

/// Writes one frame.
pub(crate) fn write_frame(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| io::Error::other("frame too large"))?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(bytes)?;
    out.flush()
}

/// Reads one frame; `None` at the end of the input.
pub(crate) fn read_frame(input: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
    if len > MAX_FRAME_BYTES {
        return Err(io::Error::other("frame too large"));
    }
    let mut frame = vec![0; len];
    input.read_exact(&mut frame)?;
    Ok(Some(frame))
}
