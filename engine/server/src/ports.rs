//! The RTP port pool: even ports from a configured range, RTCP on the next odd port
//! (RFC 3550 §11). Ports are handed out oldest-freed first, so a port is not reused while
//! late packets of its previous call may still arrive.

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

/// A pool of even RTP ports, shared by its clones: the engine shards of a process take from
/// one pool (a slice each would refuse a call on a busy shard while another has ports), a
/// lock taken once per call's media opened or closed, never per packet.
#[derive(Debug, Clone)]
pub struct PortPool {
    free: Arc<Mutex<VecDeque<u16>>>,
}

impl PortPool {
    /// Every even port in `range` whose RTCP neighbour also fits.
    pub fn new(range: RangeInclusive<u16>) -> PortPool {
        let (lo, hi) = (*range.start(), *range.end());
        let first = lo + (lo & 1);
        let free = (first..hi).step_by(2).collect();
        PortPool {
            free: Arc::new(Mutex::new(free)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut VecDeque<u16>) -> T) -> T {
        f(&mut self.free.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Take a port.
    pub fn take(&mut self) -> Option<u16> {
        self.with(|f| f.pop_front())
    }

    /// Give a port back.
    pub fn give(&mut self, port: u16) {
        self.with(|f| f.push_back(port));
    }

    /// Ports left.
    pub fn available(&self) -> usize {
        self.with(|f| f.len())
    }
}

/// Parse `LOW-HIGH`.
pub fn parse_range(s: &str) -> Result<RangeInclusive<u16>, String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("'{s}' is not LOW-HIGH"))?;
    let lo: u16 = a
        .trim()
        .parse()
        .map_err(|_| format!("'{a}' is not a port"))?;
    let hi: u16 = b
        .trim()
        .parse()
        .map_err(|_| format!("'{b}' is not a port"))?;
    if lo < 1024 || hi <= lo + 1 {
        return Err(format!("'{s}': need 1024 <= LOW and at least two ports"));
    }
    Ok(lo..=hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ports_with_room_for_rtcp() {
        let mut p = PortPool::new(10001..=10006);
        assert_eq!(p.available(), 2);
        assert_eq!(p.take(), Some(10002));
        assert_eq!(p.take(), Some(10004));
        assert_eq!(p.take(), None);
        p.give(10002);
        assert_eq!(p.take(), Some(10002));
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("10000-20000"), Ok(10000..=20000));
        assert!(parse_range("20000").is_err());
        assert!(parse_range("80-90").is_err());
    }
}
