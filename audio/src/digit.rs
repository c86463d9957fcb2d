//! The sixteen DTMF symbols.

use std::fmt;

/// One DTMF key: `0`-`9`, `*`, `#`, `A`-`D` (RFC 4733 §3.2, events 0-15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Digit {
    /// Key 0.
    D0,
    /// Key 1.
    D1,
    /// Key 2.
    D2,
    /// Key 3.
    D3,
    /// Key 4.
    D4,
    /// Key 5.
    D5,
    /// Key 6.
    D6,
    /// Key 7.
    D7,
    /// Key 8.
    D8,
    /// Key 9.
    D9,
    /// Key `*`.
    Star,
    /// Key `#`.
    Pound,
    /// Key A.
    A,
    /// Key B.
    B,
    /// Key C.
    C,
    /// Key D.
    D,
}

impl Digit {
    /// All sixteen keys in RFC 4733 event order.
    pub const ALL: [Digit; 16] = [
        Digit::D0,
        Digit::D1,
        Digit::D2,
        Digit::D3,
        Digit::D4,
        Digit::D5,
        Digit::D6,
        Digit::D7,
        Digit::D8,
        Digit::D9,
        Digit::Star,
        Digit::Pound,
        Digit::A,
        Digit::B,
        Digit::C,
        Digit::D,
    ];

    /// The RFC 4733 event code (0-15).
    pub const fn event_code(self) -> u8 {
        self as u8
    }

    /// The key for an RFC 4733 event code, if it is a DTMF event.
    pub fn from_event_code(code: u8) -> Option<Digit> {
        Digit::ALL.get(code as usize).copied()
    }

    /// The key written as a character (`0`-`9`, `*`, `#`, `A`-`D`).
    pub const fn as_char(self) -> char {
        match self {
            Digit::D0 => '0',
            Digit::D1 => '1',
            Digit::D2 => '2',
            Digit::D3 => '3',
            Digit::D4 => '4',
            Digit::D5 => '5',
            Digit::D6 => '6',
            Digit::D7 => '7',
            Digit::D8 => '8',
            Digit::D9 => '9',
            Digit::Star => '*',
            Digit::Pound => '#',
            Digit::A => 'A',
            Digit::B => 'B',
            Digit::C => 'C',
            Digit::D => 'D',
        }
    }

    /// The key for a character; letters are accepted in either case.
    pub fn from_char(c: char) -> Option<Digit> {
        Some(match c.to_ascii_uppercase() {
            '0'..='9' => Digit::ALL[(c as u8 - b'0') as usize],
            '*' => Digit::Star,
            '#' => Digit::Pound,
            'A' => Digit::A,
            'B' => Digit::B,
            'C' => Digit::C,
            'D' => Digit::D,
            _ => return None,
        })
    }

    /// The (low, high) frequency pair in Hz (ITU-T Q.23).
    pub const fn frequencies(self) -> (f32, f32) {
        const LOW: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
        const HIGH: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
        let (row, col) = match self {
            Digit::D1 => (0, 0),
            Digit::D2 => (0, 1),
            Digit::D3 => (0, 2),
            Digit::A => (0, 3),
            Digit::D4 => (1, 0),
            Digit::D5 => (1, 1),
            Digit::D6 => (1, 2),
            Digit::B => (1, 3),
            Digit::D7 => (2, 0),
            Digit::D8 => (2, 1),
            Digit::D9 => (2, 2),
            Digit::C => (2, 3),
            Digit::Star => (3, 0),
            Digit::D0 => (3, 1),
            Digit::Pound => (3, 2),
            Digit::D => (3, 3),
        };
        (LOW[row], HIGH[col])
    }
}

impl fmt::Display for Digit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chars_and_codes_round_trip() {
        for (i, d) in Digit::ALL.iter().enumerate() {
            assert_eq!(d.event_code() as usize, i);
            assert_eq!(Digit::from_event_code(i as u8), Some(*d));
            assert_eq!(Digit::from_char(d.as_char()), Some(*d));
        }
        assert_eq!(Digit::from_event_code(16), None);
        assert_eq!(Digit::from_char('x'), None);
        assert_eq!(Digit::from_char('b'), Some(Digit::B));
    }
}
