//! Fuzz target bodies for the audio code that takes network input (run by `tests/fuzz`).

use crate::reorder::{Frame, Reorder};

/// Packets into a reorder buffer: each is a 4-byte timestamp (big endian), a length byte
/// and that many samples (one byte each, scaled). Whatever arrives, frames come out whole
/// (at most 20 ms), their silence counted within them, and flushing ends with nothing held.
pub fn reorder(data: &[u8]) {
    let mut r = Reorder::new(480);
    let mut out = 0usize;
    let mut check = |f: &Frame| {
        assert!(f.len <= crate::FRAME_SAMPLES && f.missing <= f.len);
        out += f.len;
    };
    let mut rest = data;
    let mut pcm = [0i16; 255];
    while rest.len() >= 5 {
        let ts = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let n = usize::from(rest[4]).min(rest.len() - 5);
        for (i, b) in rest[5..5 + n].iter().enumerate() {
            pcm[i] = i16::from(*b as i8) * 256;
        }
        r.push(ts, &pcm[..n], &mut check);
        rest = &rest[5 + n..];
    }
    r.flush(&mut check);
    let mut after = 0;
    r.flush(&mut |f: &Frame| after += f.len);
    assert_eq!(after, 0, "a second flush finds nothing");
    let _ = out;
}
