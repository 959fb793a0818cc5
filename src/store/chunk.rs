//! The encoding of one chunk of series points: steps and times as deltas of deltas (a step that
//! grows by one, or a time every second, costs one bit), values XOR-compressed as in Gorilla
//! (Pelkonen et al., VLDB 2015): each value's bits XOR the previous value's, a repeated value costs
//! one bit and a float32 widened to f64 about half its 8 bytes. The bits are kept exactly, so NaN
//! payloads, ±Inf and -0.0 survive.
//!
//! Layout, version 2: version byte · n (varint) · one bit stream, padded with zero bits to a byte:
//! the steps and then the times (ms) as deltas of deltas (`0` the same stride as before, else `1`
//! and the change as a zigzag varint in 8-bit groups), then one bit for how the values are kept:
//! `0` XOR-compressed (the first value's 64 bits, then per value: `0` the same as before; `10` +
//! the meaningful bits in the previous window; `11` + 5 bits of leading zeros + 6 bits of
//! length − 1 + the meaningful bits), or `1` raw (from the next byte, n × 8 little-endian bytes),
//! where XOR would save less than a quarter (full-precision noise).
//!
//! Version 1 (still read): version byte · n · n step deltas · n time deltas as zigzag varints ·
//! n × 8 raw little-endian bytes of values.

use crate::domain::Series;

const V1_RAW: u8 = 1;
const V2_XOR: u8 = 2;

/// Points per chunk written by one append; appends of fewer points make smaller chunks. Measured
/// with benches/store.rs: loading 1M points took 21.5 ms at 4096, 10.5 ms at 16384 and 20.8 ms at
/// 65536 points per chunk.
pub const CHUNK_POINTS: usize = 16384;

pub fn encode(series: &Series, range: std::ops::Range<usize>, out: &mut Vec<u8>) {
    let n = range.len();
    out.clear();
    out.reserve(1 + 10 + n * 7);
    out.push(V2_XOR);
    put_varint(out, n as u64);
    let mut w = BitWriter {
        out,
        acc: 0,
        bits: 0,
    };
    put_deltas(&mut w, &series.steps[range.clone()]);
    put_deltas(&mut w, &series.times_ms[range.clone()]);
    let values = &series.values[range.clone()];
    if !xor_pays(values) {
        // Values that XOR saves little on (full-precision noise) stay raw: as small, and read
        // three times faster.
        w.put(1, 1);
        w.finish();
        for &v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
        return;
    }
    w.put(0, 1);
    let mut prev = 0u64;
    let mut window: Option<(u32, u32)> = None; // (leading, trailing) zeros of the last stored XOR
    for (i, &v) in values.iter().enumerate() {
        let bits = v.to_bits();
        if i == 0 {
            w.put(bits, 64);
        } else {
            let x = bits ^ prev;
            if x == 0 {
                w.put(0, 1);
            } else {
                let lead = x.leading_zeros().min(31);
                let trail = x.trailing_zeros();
                match window {
                    Some((pl, pt)) if lead >= pl && trail >= pt => {
                        w.put(0b10, 2);
                        w.put(x >> pt, 64 - pl - pt);
                    }
                    _ => {
                        let len = 64 - lead - trail;
                        w.put(0b11, 2);
                        w.put(u64::from(lead), 5);
                        w.put(u64::from(len - 1), 6);
                        w.put(x >> trail, len);
                        window = Some((lead, trail));
                    }
                }
            }
        }
        prev = bits;
    }
    w.finish();
}

/// Whether XOR-compressing `values` saves at least a quarter of their 8 bytes, judged on the
/// first 512: each XOR costs 1 bit when zero, else at most 13 bits of header and its meaningful
/// bits.
fn xor_pays(values: &[f64]) -> bool {
    let sample = &values[..values.len().min(512)];
    if sample.len() < 2 {
        return false;
    }
    let mut bits = 0u64;
    for pair in sample.windows(2) {
        let x = pair[0].to_bits() ^ pair[1].to_bits();
        bits += if x == 0 {
            1
        } else {
            u64::from(13 + 64 - x.leading_zeros().min(31) - x.trailing_zeros())
        };
    }
    bits * 4 < (sample.len() as u64 - 1) * 64 * 3
}

/// Encode as version 1 (raw values): what stores written before version 2 hold. Kept to measure
/// the two side by side (benches/store.rs) and to test that old chunks are still read.
pub fn encode_v1(series: &Series, range: std::ops::Range<usize>, out: &mut Vec<u8>) {
    out.clear();
    out.push(V1_RAW);
    put_varint(out, range.len() as u64);
    for column in [&series.steps, &series.times_ms] {
        let mut prev = 0i64;
        for &v in &column[range.clone()] {
            put_varint(out, zigzag(v.wrapping_sub(prev)));
            prev = v;
        }
    }
    for &v in &series.values[range] {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// A column of integers as deltas of deltas: a constant stride (steps 0, 1, 2…; times every
/// second) costs one bit a point; any other change `1` + its zigzag value in 8-bit groups.
fn put_deltas(w: &mut BitWriter, column: &[i64]) {
    let (mut prev, mut prev_delta) = (0i64, 0i64);
    for &v in column {
        let delta = v.wrapping_sub(prev);
        let dod = delta.wrapping_sub(prev_delta);
        if dod == 0 {
            w.put(0, 1);
        } else {
            w.put(1, 1);
            let mut z = zigzag(dod);
            loop {
                let more = z >= 0x80;
                w.put((z & 0x7f) | if more { 0x80 } else { 0 }, 8);
                z >>= 7;
                if !more {
                    break;
                }
            }
        }
        prev = v;
        prev_delta = delta;
    }
}

fn get_deltas(r: &mut BitReader, n: usize, into: &mut Vec<i64>) -> Result<(), String> {
    let (mut prev, mut prev_delta) = (0i64, 0i64);
    let mut left = n;
    while left > 0 {
        // With 8 whole bytes ahead, the next 57 bits are read as one word: a run of up to 56
        // points at the same stride, or one change of stride (a `1` and at most 7 groups).
        let byte = r.pos / 8;
        if let Some(b) = r.data.get(byte..byte + 8) {
            let word = u64::from_be_bytes(b.try_into().expect("8 bytes")) << (r.pos % 8);
            let zeros = word.leading_zeros().min(56).min(left as u32);
            if zeros > 0 {
                for _ in 0..zeros {
                    prev = prev.wrapping_add(prev_delta);
                    into.push(prev);
                }
                r.pos += zeros as usize;
                left -= zeros as usize;
                continue;
            }
            let (mut x, mut z, mut shift, mut used) = (word << 1, 0u64, 0u32, 1usize);
            let mut whole = false;
            while used + 8 <= 57 {
                let g = x >> 56;
                x <<= 8;
                used += 8;
                z |= (g & 0x7f) << shift;
                shift += 7;
                if g < 0x80 {
                    whole = true;
                    break;
                }
            }
            if whole {
                r.pos += used;
                let delta = prev_delta.wrapping_add(unzigzag(z));
                prev = prev.wrapping_add(delta);
                into.push(prev);
                prev_delta = delta;
                left -= 1;
                continue;
            }
            // A change longer than 7 groups: read below, bit by bit.
        }
        // A run of `0` bits is a run of points at the same stride: take up to 56 at once.
        let zeros = r.zero_run(left.min(56) as u32);
        for _ in 0..zeros {
            prev = prev.wrapping_add(prev_delta);
            into.push(prev);
        }
        left -= zeros as usize;
        if left == 0 {
            break;
        }
        let dod = if r.get(1)? == 0 {
            0
        } else {
            let mut z = 0u64;
            let mut shift = 0;
            loop {
                let b = r.get(8)?;
                if shift >= 64 {
                    return Err("chunk delta longer than 10 bytes".into());
                }
                z |= (b & 0x7f) << shift;
                shift += 7;
                if b < 0x80 {
                    break;
                }
            }
            unzigzag(z)
        };
        let delta = prev_delta.wrapping_add(dod);
        prev = prev.wrapping_add(delta);
        into.push(prev);
        prev_delta = delta;
        left -= 1;
    }
    Ok(())
}

/// Decode one chunk, appending its points to `into`.
pub fn decode(data: &[u8], into: &mut Series) -> Result<(), String> {
    let mut r = Reader { data, pos: 0 };
    let version = r.byte()?;
    if version != V1_RAW && version != V2_XOR {
        return Err(format!("unknown chunk version {version}"));
    }
    let n = usize::try_from(r.varint()?).map_err(|_| "chunk too large".to_string())?;
    // Every point takes at least one bit of each column: no allocation beyond what the bytes hold.
    if n > data.len().saturating_mul(8) {
        return Err(format!("chunk claims {n} points in {} bytes", data.len()));
    }
    into.steps.reserve(n);
    into.times_ms.reserve(n);
    into.values.reserve(n);
    if version == V2_XOR {
        return decode_v2(&data[r.pos..], n, into);
    }
    let mut prev = 0i64;
    for _ in 0..n {
        prev = prev.wrapping_add(unzigzag(r.varint()?));
        into.steps.push(prev);
    }
    prev = 0;
    for _ in 0..n {
        prev = prev.wrapping_add(unzigzag(r.varint()?));
        into.times_ms.push(prev);
    }
    raw_values(&data[r.pos..], n, into)
}

/// `n` values as raw little-endian f64s, exactly filling `rest`.
fn raw_values(rest: &[u8], n: usize, into: &mut Series) -> Result<(), String> {
    if rest.len() != n * 8 {
        return Err(format!(
            "chunk values hold {} bytes, expected {}",
            rest.len(),
            n * 8
        ));
    }
    into.values.extend(
        rest.chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("chunks_exact(8)"))),
    );
    Ok(())
}

fn decode_v2(data: &[u8], n: usize, into: &mut Series) -> Result<(), String> {
    let mut r = BitReader { data, pos: 0 };
    get_deltas(&mut r, n, &mut into.steps)?;
    get_deltas(&mut r, n, &mut into.times_ms)?;
    if r.get(1)? == 1 {
        // Raw values, from the next byte.
        return raw_values(&data[r.pos.div_ceil(8)..], n, into);
    }
    let mut prev = 0u64;
    let (mut lead, mut trail) = (0u32, 0u32);
    let mut window = false;
    for i in 0..n {
        let bits = if i == 0 {
            r.get(64)?
        } else if r.get(1)? == 0 {
            prev
        } else if r.get(1)? == 0 {
            if !window {
                return Err("chunk values reuse a window never set".into());
            }
            prev ^ (r.get(64 - lead - trail)? << trail)
        } else {
            lead = r.get(5)? as u32;
            let len = r.get(6)? as u32 + 1;
            if lead + len > 64 {
                return Err("chunk values: a window wider than 64 bits".into());
            }
            trail = 64 - lead - len;
            window = true;
            prev ^ (r.get(len)? << trail)
        };
        into.values.push(f64::from_bits(bits));
        prev = bits;
    }
    // Only the zero padding of the last byte may remain.
    if data.len() != r.pos.div_ceil(8) {
        return Err(format!(
            "chunk values: {} bytes after the last value",
            data.len() - r.pos.div_ceil(8)
        ));
    }
    Ok(())
}

/// Bits, most significant first, into bytes: a 64-bit accumulator, filled from the top and
/// written out 8 bytes at a time.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    /// Bits held in `acc`, from its top (fewer than 64 between calls).
    bits: u32,
}

impl BitWriter<'_> {
    /// Append the low `n` bits of `v` (n ≤ 64).
    #[inline]
    fn put(&mut self, v: u64, n: u32) {
        if n == 0 {
            return;
        }
        let v = if n == 64 { v } else { v & ((1u64 << n) - 1) };
        let free = 64 - self.bits;
        if n < free {
            self.acc |= v << (free - n);
            self.bits += n;
        } else {
            // Fill the accumulator, write it, keep the low `n - free` bits.
            let rest = n - free;
            self.acc |= v >> rest;
            self.out.extend_from_slice(&self.acc.to_be_bytes());
            self.acc = if rest == 0 { 0 } else { v << (64 - rest) };
            self.bits = rest;
        }
    }
    /// Write what is held, padded with zero bits to a byte.
    fn finish(self) {
        let bytes = self.bits.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_be_bytes()[..bytes]);
    }
}

struct BitReader<'a> {
    data: &'a [u8],
    /// The next bit to read, counted from the start.
    pos: usize,
}

impl BitReader<'_> {
    /// The next `n` bits (n ≤ 64), most significant first.
    #[inline]
    fn get(&mut self, n: u32) -> Result<u64, String> {
        if n == 0 {
            return Ok(0);
        }
        if self.pos + n as usize > self.data.len() * 8 {
            return Err("chunk values truncated".into());
        }
        if n > 56 {
            let hi = self.get(n - 32)?;
            let lo = self.get(32)?;
            return Ok((hi << 32) | lo);
        }
        // The 8 bytes from the one holding `pos` (zeros past the end), shifted to `pos`.
        let byte = self.pos / 8;
        let word = self.word_at(byte);
        let v = (word << (self.pos % 8)) >> (64 - n);
        self.pos += n as usize;
        Ok(v)
    }

    /// The 8 bytes from `byte` on, big-endian, with zeros past the end.
    #[inline]
    fn word_at(&self, byte: usize) -> u64 {
        match self.data.get(byte..byte + 8) {
            Some(b) => u64::from_be_bytes(b.try_into().expect("8 bytes")),
            None => {
                let mut w = [0u8; 8];
                let tail = &self.data[byte..];
                w[..tail.len()].copy_from_slice(tail);
                u64::from_be_bytes(w)
            }
        }
    }

    /// Consume the `0` bits that come next, at most `max` (≤ 56) and no further than the data;
    /// returns how many.
    #[inline]
    fn zero_run(&mut self, max: u32) -> u32 {
        let avail = (self.data.len() * 8)
            .saturating_sub(self.pos)
            .min(max as usize) as u32;
        if avail == 0 {
            return 0;
        }
        let byte = self.pos / 8;
        let word = self.word_at(byte);
        let zeros = (word << (self.pos % 8)).leading_zeros().min(avail);
        self.pos += zeros as usize;
        zeros
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.data.get(self.pos).ok_or("chunk truncated")?;
        self.pos += 1;
        Ok(b)
    }
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_changing_by_every_size_round_trip() {
        // Changes of stride from one group to ten, among runs of equal strides, so that both the
        // word-at-a-time reading and the bit-by-bit one meet each size at every bit offset.
        let mut seed = 7u64;
        let mut s = Series::default();
        let (mut step, mut t) = (0i64, 0i64);
        for i in 0..20_000 {
            let r = rng(&mut seed);
            // Long stretches at one stride too, for runs of zeros longer than a word.
            let change = match r % 4 {
                _ if (i / 100) % 5 == 0 => 0,
                0 => 0,
                _ => (r >> 8) as i64 >> (r % 63),
            };
            step = step.wrapping_add(1 + if i % 3 == 0 { change } else { 0 });
            t = t.wrapping_add(250 + change);
            s.push(step, t, i as f64);
        }
        round_trip(&s);
    }

    #[test]
    fn round_trips_odd_values_and_steps() {
        let mut s = Series::default();
        let values = [
            0.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            1e300,
            f64::MIN_POSITIVE,
        ];
        let steps = [0, 1, 2, 10, 9, -5, i64::MAX];
        for (i, (&v, &st)) in values.iter().zip(&steps).enumerate() {
            s.push(st, 1_700_000_000_000 + i as i64 * 37, v);
        }
        let mut buf = Vec::new();
        encode(&s, 0..s.len(), &mut buf);
        let mut back = Series::default();
        decode(&buf, &mut back).unwrap();
        assert_eq!(back.steps, s.steps);
        assert_eq!(back.times_ms, s.times_ms);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.values), bits(&s.values));
    }

    fn round_trip(s: &Series) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(s, 0..s.len(), &mut buf);
        let mut back = Series::default();
        decode(&buf, &mut back).unwrap();
        assert_eq!(back.steps, s.steps);
        assert_eq!(back.times_ms, s.times_ms);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.values), bits(&s.values));
        buf
    }

    /// A small xorshift generator: the same numbers every run.
    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn any_bits_round_trip_exactly() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in [1usize, 2, 3, 17, 1000] {
            for kind in 0..5 {
                let mut s = Series::default();
                let mut x = 1.0f64;
                for i in 0..len {
                    let r = rng(&mut seed);
                    let v = match kind {
                        0 => f64::from_bits(r),                   // any bit pattern, NaNs too
                        1 => (r as f32 / u32::MAX as f32) as f64, // float32 widened
                        2 => {
                            x += (r % 1000) as f64 * 1e-6 - 5e-4; // a smooth walk
                            x
                        }
                        3 => {
                            [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN][r as usize % 5]
                        }
                        _ => (i / 7) as f64, // runs of repeats
                    };
                    s.push(i as i64, 1_700_000_000_000 + i as i64 * 250, v);
                }
                round_trip(&s);
            }
        }
    }

    #[test]
    fn float32_metrics_take_about_half_the_bytes_of_raw_floats() {
        let mut seed = 7u64;
        let mut s = Series::default();
        let mut loss = 2.5f32;
        for i in 0..10_000 {
            loss *= 0.9997 + (rng(&mut seed) % 100) as f32 * 1e-6;
            s.push(i, 1_700_000_000_000 + i * 1000, f64::from(loss));
        }
        let buf = round_trip(&s);
        // Version 1 took 11 bytes a point here: 1 for the step, 2 for the time, 8 for the value.
        let v1 = 10_000 * 11;
        assert!(
            buf.len() * 2 < v1,
            "{} bytes against {v1} in version 1",
            buf.len()
        );
    }

    #[test]
    fn values_xor_saves_little_on_stay_raw() {
        let mut seed = 5u64;
        let mut noise = Series::default();
        for i in 0..1000 {
            noise.push(i, i, f64::from_bits(rng(&mut seed) >> 2));
        }
        let buf = round_trip(&noise);
        // 8 bytes a value, and a bit a point for each of the constant steps and times.
        assert!(
            buf.len() >= 8000 && buf.len() < 8000 + 300,
            "raw: {} bytes",
            buf.len()
        );
        let mut widened = Series::default();
        for i in 0..1000 {
            widened.push(i, i, f64::from((i as f32).sqrt()));
        }
        let xor = round_trip(&widened).len();
        assert!(xor < 6000, "XOR-compressed: {xor} bytes");
    }

    #[test]
    fn version_1_chunks_written_before_are_read_exactly() {
        let mut seed = 11u64;
        let mut s = Series::default();
        for i in 0..500 {
            s.push(
                i * 3,
                1_700_000_000_000 + i * 7,
                f64::from_bits(rng(&mut seed)),
            );
        }
        let mut v1 = Vec::new();
        encode_v1(&s, 0..500, &mut v1);
        assert_eq!(v1[0], 1);
        let mut back = Series::default();
        decode(&v1, &mut back).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            (back.steps, back.times_ms),
            (s.steps.clone(), s.times_ms.clone())
        );
        assert_eq!(bits(&back.values), bits(&s.values));
    }

    #[test]
    fn version_1_chunks_are_still_read() {
        // 2 points: steps 5, 6; times 1000, 1001; values 0.5, NaN, written as version 1.
        let mut v1 = vec![1u8, 2, 10, 2, 208, 15, 2];
        v1.extend_from_slice(&0.5f64.to_le_bytes());
        v1.extend_from_slice(&f64::NAN.to_le_bytes());
        let mut back = Series::default();
        decode(&v1, &mut back).unwrap();
        assert_eq!(back.steps, [5, 6]);
        assert_eq!(back.times_ms, [1000, 1001]);
        assert_eq!(back.values[0], 0.5);
        assert!(back.values[1].is_nan());
    }

    #[test]
    fn a_constant_stride_costs_a_bit_a_point() {
        let mut s = Series::default();
        for i in 0..1000 {
            s.push(i, 1_700_000_000_000 + i * 100, i as f64);
        }
        let mut buf = Vec::new();
        encode(&s, 0..1000, &mut buf);
        // One bit a step and a time at a constant stride; small integers XOR in a few bits.
        assert!(buf.len() < 1000 * 3, "{} bytes", buf.len());
    }

    #[test]
    fn corrupt_chunks_are_errors_not_panics() {
        let mut s = Series::default();
        s.push(1, 2, 3.0);
        s.push(2, 3, 3.5);
        s.push(3, 4, -1e9);
        let mut buf = Vec::new();
        encode(&s, 0..3, &mut buf);
        for cut in 0..buf.len() {
            assert!(
                decode(&buf[..cut], &mut Series::default()).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = buf.clone();
        longer.push(0);
        assert!(
            decode(&longer, &mut Series::default()).is_err(),
            "a byte too many"
        );
        // Every byte flipped: an error or other points, never a panic.
        let mut seed = 3u64;
        for _ in 0..2000 {
            let mut bad = buf.clone();
            let i = rng(&mut seed) as usize % bad.len();
            bad[i] ^= 1 << (rng(&mut seed) % 8);
            let _ = decode(&bad, &mut Series::default());
        }
        assert!(decode(&[9, 0], &mut Series::default()).is_err());
        assert!(
            decode(
                &[
                    1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
                ],
                &mut Series::default()
            )
            .is_err()
        );
    }
}
