//! A cursor over JSON bytes for the strict one-pass readers ([`crate::ingest::fast_path`] for record values,
//! [`crate::kafka::strict`] for the Kafka event): it reads only what the JSON grammar allows and
//! *declines* anything else, so the reader using it can give its input back to a lenient one.

/// Why a strict reader gave its input back to the lenient one, which decides (never shown to
/// users: the lenient reader gives the real reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decline;

pub(crate) type Step<T> = Result<T, Decline>;

/// Bytes that end the plain run of a JSON string: the quote, the escape, control characters.
pub(crate) const STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// The first of the eight bytes in `w` (little-endian) that is one of [`STRING_STOP`], all
/// tested at once: a byte is zero after XOR with the quote or the backslash, or below 0x20,
/// when the classic "(x - 0x01..) & !x & 0x80.." test sets its high bit. That test may also
/// flag a byte above a flagged one (a borrow), never one below: the lowest flag is exact.
fn first_stop(w: u64) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    let flags = below(w ^ (ONES * b'"' as u64), 1) | below(w ^ (ONES * b'\\' as u64), 1) | below(w, 0x20);
    (flags != 0).then(|| flags.trailing_zeros() as usize / 8)
}

/// Bytes of a string run read eight at a time before [`Cursor::run`] searches the rest.
const SHORT_RUN: usize = 32;

pub(crate) struct Cursor<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) i: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    pub(crate) fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }
    pub(crate) fn eat(&mut self, c: u8) -> Step<()> {
        if self.next() == Some(c) { Ok(()) } else { Err(Decline) }
    }
    pub(crate) fn literal(&mut self, lit: &[u8]) -> Step<()> {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(Decline)
        }
    }
    pub(crate) fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    /// The plain run of a string from here (after its opening quote), up to the first byte of
    /// [`STRING_STOP`]: eight bytes at a time for the first [`SHORT_RUN`] bytes (most keys and
    /// values end there), then a vector search for the quote and the backslash and one pass
    /// for control characters before it; the last few bytes of the input one by one.
    pub(crate) fn run(&mut self) -> &'a [u8] {
        let start = self.i;
        while let Some(w) = self.b.get(self.i..self.i + 8) {
            if let Some(at) = first_stop(u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]])) {
                self.i += at;
                return &self.b[start..self.i];
            }
            self.i += 8;
            if self.i - start == SHORT_RUN {
                let rest = &self.b[self.i..];
                let mut end = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
                // Branch-free, so that it runs on vectors too.
                if rest[..end].iter().fold(false, |any, b| any | (*b < 0x20)) {
                    end = rest[..end].iter().position(|b| *b < 0x20).unwrap_or(end);
                }
                self.i += end;
                return &self.b[start..self.i];
            }
        }
        while self.i < self.b.len() && !STRING_STOP[self.b[self.i] as usize] {
            self.i += 1;
        }
        &self.b[start..self.i]
    }
    /// The rest of a string without escapes, after its opening quote; consumes the closing one.
    pub(crate) fn plain_string(&mut self) -> Step<&'a [u8]> {
        let s = self.run();
        self.eat(b'"')?;
        Ok(s)
    }
    /// A number token, checked against the JSON grammar. Returns it and whether it is integral.
    pub(crate) fn number(&mut self) -> Step<(&'a [u8], bool)> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.next() {
            Some(b'0') => {}
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Decline),
        }
        let mut integral = true;
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
            integral = false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.some_digits()?;
            integral = false;
        }
        Ok((&self.b[start..self.i], integral))
    }
    /// A whole number that fits 64 bits ([`int_value`] of an integral token).
    pub(crate) fn int(&mut self) -> Step<i64> {
        match self.number()? {
            (tok, true) => int_value(tok),
            _ => Err(Decline),
        }
    }
    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
    }
    fn some_digits(&mut self) -> Step<()> {
        let start = self.i;
        self.digits();
        if self.i > start { Ok(()) } else { Err(Decline) }
    }
    /// A JSON string (after its opening quote) appended to `out`, escapes resolved.
    pub(crate) fn string_into(&mut self, out: &mut Vec<u8>) -> Step<()> {
        loop {
            out.extend_from_slice(self.run());
            match self.next() {
                Some(b'"') => return Ok(()),
                Some(b'\\') => {}
                _ => return Err(Decline), // a control character or the end
            }
            let c = match self.next().ok_or(Decline)? {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let hi = self.hex4()?;
                    let code = match hi {
                        0xD800..=0xDBFF => {
                            self.literal(b"\\u")?;
                            let lo = self.hex4()?;
                            if !(0xDC00..=0xDFFF).contains(&lo) {
                                return Err(Decline);
                            }
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                        }
                        0xDC00..=0xDFFF => return Err(Decline),
                        _ => hi,
                    };
                    char::from_u32(code).ok_or(Decline)?
                }
                _ => return Err(Decline),
            };
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    fn hex4(&mut self) -> Step<u32> {
        let h = self.b.get(self.i..self.i + 4).ok_or(Decline)?;
        self.i += 4;
        h.iter().try_fold(0u32, |n, d| Ok(n * 16 + (*d as char).to_digit(16).ok_or(Decline)?))
    }
}

/// An integer token (grammar-checked, integral) as an `i64`; `-0` declines (serde_json reads it
/// as a float).
pub(crate) fn int_value(tok: &[u8]) -> Step<i64> {
    let (neg, digits) = match tok.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, tok),
    };
    if neg && digits == b"0" {
        return Err(Decline);
    }
    let mut n: u64 = 0;
    for d in digits {
        n = n.checked_mul(10).and_then(|n| n.checked_add(u64::from(d - b'0'))).ok_or(Decline)?;
    }
    if neg { 0i64.checked_sub_unsigned(n).ok_or(Decline) } else { i64::try_from(n).map_err(|_| Decline) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample::Rng;

    #[test]
    fn word_test_finds_exactly_the_first_byte_that_ends_a_run() {
        let first = |w: &[u8; 8]| w.iter().position(|b| STRING_STOP[*b as usize]);
        // Every byte value in every position, among bytes that do not stop a run.
        for pos in 0..8 {
            for b in 0..=255u8 {
                let mut w = *b"abcdefgh";
                w[pos] = b;
                assert_eq!(first_stop(u64::from_le_bytes(w)), first(&w), "byte {b:#x} at {pos}");
            }
        }
        // Neighbours that borrow in the subtraction (0x00, 0x01, 0x80, 0xff) neither hide nor invent one.
        let mut rng = Rng::new(1);
        let pick = [0x00u8, 0x01, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff, b'a'];
        for _ in 0..100_000 {
            let w: [u8; 8] = std::array::from_fn(|_| pick[rng.below(pick.len() as u64) as usize]);
            assert_eq!(first_stop(u64::from_le_bytes(w)), first(&w), "{w:?}");
        }
    }

    #[test]
    fn a_run_ends_at_the_first_byte_that_stops_it() {
        // Strings of every length around the switch to the vector search, with stop bytes
        // (quote, backslash, controls) and their neighbours at random places, or none.
        let mut rng = Rng::new(4);
        let pick = [b'a', b'a', b'a', b'a', b'a', b'a', b' ', 0x7f, 0xc3, 0xa9, b'"', b'\\', 0x00, 0x1f, 0x20, 0x21];
        for round in 0..50_000 {
            let len = rng.below(3 * SHORT_RUN as u64) as usize;
            let stops = round % 4;
            let s: Vec<u8> = (0..len)
                .map(
                    |_| if rng.below(len as u64 + 1) < stops as u64 { pick[rng.below(pick.len() as u64) as usize] } else { b'x' },
                )
                .collect();
            let mut p = Cursor { b: &s, i: 0 };
            let first = s.iter().position(|b| STRING_STOP[*b as usize]).unwrap_or(s.len());
            assert_eq!(p.run(), &s[..first], "{s:?}");
            assert_eq!(p.i, first);
        }
    }
}
