//! TensorBoard event files: TFRecord framing (length, masked CRC32C of the length, data, masked
//! CRC32C of the data) around `Event` protos. Scalars are read from both forms TensorBoard writes:
//! `simple_value`, and a one-element float/double tensor (the v2 summary API). A corrupt or
//! truncated record is skipped and counted; the file is read on where the framing allows.

use std::path::Path;

use prost::Message;

/// The parts of tensorflow's `Event`, `Summary` and `TensorProto` that hold scalars.
#[derive(Clone, PartialEq, Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SummaryValue {
    #[prost(string, tag = "7")]
    pub node_name: String,
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    #[prost(message, optional, tag = "8")]
    pub tensor: Option<TensorProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub tensor_content: Vec<u8>,
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    #[prost(double, repeated, tag = "6")]
    pub double_val: Vec<f64>,
    #[prost(int32, repeated, tag = "7")]
    pub int_val: Vec<i32>,
    #[prost(int64, repeated, tag = "10")]
    pub int64_val: Vec<i64>,
}

const DT_FLOAT: i32 = 1;
const DT_DOUBLE: i32 = 2;
const DT_INT32: i32 = 3;
const DT_INT64: i32 = 9;
const DT_HALF: i32 = 19;

impl TensorProto {
    /// The value of a scalar tensor, whichever field holds it.
    pub fn scalar(&self) -> Option<f64> {
        if let Some(v) = self.float_val.first() {
            return Some(f64::from(*v));
        }
        if let Some(v) = self.double_val.first() {
            return Some(*v);
        }
        if let Some(v) = self.int_val.first() {
            return Some(f64::from(*v));
        }
        if let Some(v) = self.int64_val.first() {
            return Some(*v as f64);
        }
        let c = &self.tensor_content;
        match self.dtype {
            DT_FLOAT if c.len() >= 4 => {
                Some(f64::from(f32::from_le_bytes(c[..4].try_into().ok()?)))
            }
            DT_DOUBLE if c.len() >= 8 => Some(f64::from_le_bytes(c[..8].try_into().ok()?)),
            DT_INT32 if c.len() >= 4 => {
                Some(f64::from(i32::from_le_bytes(c[..4].try_into().ok()?)))
            }
            DT_INT64 if c.len() >= 8 => Some(i64::from_le_bytes(c[..8].try_into().ok()?) as f64),
            DT_HALF if c.len() >= 2 => {
                Some(f64::from(half_to_f32(u16::from_le_bytes([c[0], c[1]]))))
            }
            _ => None,
        }
    }
}

fn half_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = (h >> 10) & 0x1f;
    let frac = u32::from(h & 0x3ff);
    let bits = match exp {
        0 if frac == 0 => sign,
        0 => {
            // Subnormal: frac x 2^-24. Shift until the hidden bit (0x400) is set, k times; the
            // value is then 1.f x 2^(-14 - k), a biased f32 exponent of 113 - k.
            let mut k = 0u32;
            let mut f = frac;
            while f & 0x400 == 0 {
                f <<= 1;
                k += 1;
            }
            sign | ((113 - k) << 23) | ((f & 0x3ff) << 13)
        }
        0x1f => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((u32::from(exp) + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// TFRecord's CRC: CRC32C, rotated and offset.
pub fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// One scalar point.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub tag: String,
    pub step: i64,
    pub wall_time: f64,
    pub value: f64,
}

/// What reading one file found.
#[derive(Debug, Default)]
pub struct FileScalars {
    pub scalars: Vec<Scalar>,
    /// Records whose length or data checksum was wrong, or that did not parse.
    pub bad_records: usize,
    /// The file ended inside a record.
    pub truncated: bool,
}

/// Read every scalar of a TFRecord event file held in memory.
pub fn read_events(bytes: &[u8]) -> FileScalars {
    let mut out = FileScalars::default();
    let mut pos = 0usize;
    while pos < bytes.len() {
        if bytes.len() - pos < 12 {
            out.truncated = true;
            break;
        }
        let len_bytes = &bytes[pos..pos + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes")) as usize;
        let len_crc = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().expect("4 bytes"));
        if masked_crc(len_bytes) != len_crc {
            // The length itself is untrustworthy: nothing after it can be framed.
            out.bad_records += 1;
            break;
        }
        let start = pos + 12;
        let Some(end) = start.checked_add(len).filter(|e| e + 4 <= bytes.len()) else {
            out.truncated = true;
            break;
        };
        let data = &bytes[start..end];
        let data_crc = u32::from_le_bytes(bytes[end..end + 4].try_into().expect("4 bytes"));
        pos = end + 4;
        if masked_crc(data) != data_crc {
            out.bad_records += 1;
            continue;
        }
        let Ok(ev) = Event::decode(data) else {
            out.bad_records += 1;
            continue;
        };
        let Some(summary) = ev.summary else { continue };
        for v in summary.value {
            let value = match (v.simple_value, &v.tensor) {
                (Some(x), _) => Some(f64::from(x)),
                (None, Some(t)) => t.scalar(),
                _ => None,
            };
            if let Some(value) = value {
                out.scalars.push(Scalar {
                    tag: v.tag,
                    step: ev.step,
                    wall_time: ev.wall_time,
                    value,
                });
            }
        }
    }
    out
}

/// Frame one record (for tests and for writing fixtures).
pub fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// Directories under `root` (itself included) that hold event files, each with its files sorted.
pub fn event_dirs(
    root: &Path,
) -> std::io::Result<Vec<(std::path::PathBuf, Vec<std::path::PathBuf>)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut files = Vec::new();
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                stack.push(p);
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("tfevents"))
            {
                files.push(p);
            }
        }
        if !files.is_empty() {
            files.sort();
            out.push((dir, files));
        }
    }
    out.sort();
    Ok(out)
}

/// One run per directory of event files under `root`: scalars grouped by tag, with step and wall
/// time. Returns the runs and the counts of corrupt records and truncated files skipped.
pub fn import_dir(
    root: &Path,
    experiment: &str,
) -> std::io::Result<(Vec<super::ImportedRun>, usize, usize)> {
    use crate::domain::{RunStatus, Series};
    let root_abs = root.canonicalize()?;
    let root_name = root_abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tensorboard".into());
    let mut runs = Vec::new();
    let (mut bad, mut truncated) = (0, 0);
    for (dir, files) in event_dirs(&root_abs)? {
        let mut scalars = Vec::new();
        for f in files {
            let bytes = std::fs::read(&f)?;
            let r = read_events(&bytes);
            bad += r.bad_records;
            truncated += usize::from(r.truncated);
            scalars.extend(r.scalars);
        }
        let rel = dir.strip_prefix(&root_abs).unwrap_or(&dir);
        let name = if rel.as_os_str().is_empty() {
            root_name.clone()
        } else {
            rel.display().to_string()
        };
        // Per tag, in step order (stable, so equal steps keep the order they were written in).
        let mut by_tag: Vec<(String, Vec<&Scalar>)> = Vec::new();
        for s in &scalars {
            match by_tag.iter_mut().find(|(t, _)| *t == s.tag) {
                Some((_, v)) => v.push(s),
                None => by_tag.push((s.tag.clone(), vec![s])),
            }
        }
        let mut metrics = Vec::new();
        for (tag, mut pts) in by_tag {
            pts.sort_by_key(|s| s.step);
            let mut series = Series::with_capacity(pts.len());
            for p in pts {
                series.push(p.step, (p.wall_time * 1000.0).round() as i64, p.value);
            }
            metrics.push((tag, series));
        }
        metrics.sort_by(|a, b| a.0.cmp(&b.0));
        let times: Vec<f64> = scalars.iter().map(|s| s.wall_time).collect();
        let first = times.iter().copied().fold(f64::INFINITY, f64::min);
        let last = times.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        runs.push(super::ImportedRun {
            id: super::stable_id(&format!("tensorboard:{}", dir.display())),
            experiment: experiment.to_string(),
            name,
            status: Some(RunStatus::Finished),
            started_ms: if first.is_finite() {
                (first * 1000.0) as i64
            } else {
                0
            },
            ended_ms: last.is_finite().then_some((last * 1000.0) as i64),
            host: "tensorboard".into(),
            tags: vec![("source".into(), format!("tensorboard:{}", dir.display()))],
            metrics,
            ..Default::default()
        });
    }
    Ok((runs, bad, truncated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(step: i64, values: Vec<SummaryValue>) -> Vec<u8> {
        Event {
            wall_time: 1.7e9 + step as f64,
            step,
            summary: Some(Summary { value: values }),
        }
        .encode_to_vec()
    }

    fn simple(tag: &str, v: f32) -> SummaryValue {
        SummaryValue {
            tag: tag.into(),
            simple_value: Some(v),
            ..Default::default()
        }
    }

    #[test]
    fn crc_matches_tensorflows_masked_crc32c() {
        // The masked CRC of the 8-byte length 0 in every TFRecord writer.
        assert_eq!(masked_crc(&0u64.to_le_bytes()), masked_crc(&[0; 8]));
        assert_eq!(
            crc32c::crc32c(b"123456789"),
            0xe306_9283,
            "CRC-32C check value"
        );
    }

    #[test]
    fn reads_both_scalar_forms_and_skips_corrupt_records() {
        let tensor = SummaryValue {
            tag: "t2".into(),
            tensor: Some(TensorProto {
                dtype: DT_FLOAT,
                tensor_content: 2.5f32.to_le_bytes().to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let dbl = SummaryValue {
            tag: "d".into(),
            tensor: Some(TensorProto {
                dtype: DT_DOUBLE,
                double_val: vec![0.125],
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut file = frame(
            &Event {
                wall_time: 1.0,
                step: 0,
                summary: None,
            }
            .encode_to_vec(),
        );
        file.extend(frame(&event(1, vec![simple("loss", 0.5), tensor])));
        let mut bad = frame(&event(2, vec![simple("loss", 0.4)]));
        let n = bad.len();
        bad[n - 6] ^= 0xff; // corrupt the data, not the framing
        file.extend(bad);
        file.extend(frame(&event(3, vec![simple("loss", 0.3), dbl])));
        let mut cut = frame(&event(4, vec![simple("loss", 0.2)]));
        cut.truncate(cut.len() - 3);
        file.extend(cut);
        let r = read_events(&file);
        let got: Vec<(&str, i64, f64)> = r
            .scalars
            .iter()
            .map(|s| (s.tag.as_str(), s.step, s.value))
            .collect();
        assert_eq!(
            got,
            vec![
                ("loss", 1, 0.5),
                ("t2", 1, 2.5),
                ("loss", 3, 0.30000001192092896),
                ("d", 3, 0.125)
            ]
        );
        assert_eq!(r.bad_records, 1);
        assert!(r.truncated);
    }

    #[test]
    fn half_precision() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert!(half_to_f32(0x7e00).is_nan());
        assert_eq!(
            half_to_f32(0x0001),
            5.960_464_5e-8,
            "the smallest subnormal, 2^-24"
        );
        assert_eq!(
            half_to_f32(0x03ff),
            1023.0 * 2f32.powi(-24),
            "the largest subnormal"
        );
        assert_eq!(
            half_to_f32(0x0400),
            6.103_515_6e-5,
            "the smallest normal, 2^-14"
        );
    }
}
