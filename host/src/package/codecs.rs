//! RFC 6381 codec strings read from the bitstream a rendition actually holds, not from what
//! the plan asked for: `avc1.PPCCLL` from H.264's avcC box or SPS, `hvc1.…` from HEVC's hvcC box
//! or SPS (ISO/IEC 14496-15 annex E), `mp4a.40.2` for AAC-LC.
//!
//! fMP4 renditions are read from the init segment's sample entries (`avc1`/`hvc1` with their
//! `avcC`/`hvcC`, `mp4a` with its `esds`). MPEG-TS renditions are read by parsing the first
//! media segment directly (PAT, PMT, then the first SPS or ADTS header of each elementary
//! stream): no ffmpeg run, no scratch file. Any other codec is refused, so the master never
//! names one a player cannot check.
//!
//! Not here: which codecs a plan may use (that is [`crate::plan::allowlist`]).

use super::PackageError;

/// The most bytes of a file read to find codec configuration.
pub const MAX_SCAN_BYTES: usize = 8 << 20;

fn refuse(why: impl Into<String>) -> PackageError {
    PackageError::Refused(why.into())
}

fn malformed(why: impl Into<String>) -> PackageError {
    PackageError::Rendition(why.into())
}

/// HEVC's general profile, tier and level, as both hvcC and the SPS lay them out.
fn hevc_string(ptl: &[u8]) -> Option<String> {
    // general_profile_space(2) tier(1) profile_idc(5), 32 compatibility flags, 48 constraint
    // bits, level_idc.
    let ptl = ptl.get(..12)?;
    let space = ["", "A", "B", "C"][usize::from(ptl[0] >> 6)];
    let tier = if ptl[0] & 0x20 != 0 { 'H' } else { 'L' };
    let profile = ptl[0] & 0x1f;
    let compat = u32::from_be_bytes([ptl[1], ptl[2], ptl[3], ptl[4]]).reverse_bits();
    let constraints = &ptl[5..11];
    let level = ptl[11];
    let mut s = format!("hvc1.{space}{profile}.{compat:X}.{tier}{level}");
    let kept = constraints
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |i| i + 1);
    for b in &constraints[..kept] {
        s.push_str(&format!(".{b:X}"));
    }
    Some(s)
}

fn avc_string(profile: u8, constraints: u8, level: u8) -> String {
    format!("avc1.{profile:02x}{constraints:02x}{level:02x}")
}

fn aac_string(object_type: u8) -> Result<String, PackageError> {
    match object_type {
        2 => Ok("mp4a.40.2".into()),
        other => Err(refuse(format!(
            "AAC of audio object type {other} is not supported in an HLS package; encode \
             AAC-LC (object type 2)"
        ))),
    }
}

/// The child boxes of an ISO BMFF box payload: (type, payload).
fn boxes(mut data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 8 {
            return None;
        }
        let size = u32::from_be_bytes(data[..4].try_into().ok()?) as u64;
        let kind = &data[4..8];
        let (header, size) = match size {
            1 => (16, u64::from_be_bytes(data.get(8..16)?.try_into().ok()?)),
            0 => (8, data.len() as u64),
            s => (8, s),
        };
        let size = usize::try_from(size).ok()?;
        if size < header || size > data.len() {
            return None;
        }
        let payload = &data[header..size];
        data = &data[size..];
        Some((kind, payload))
    })
}

fn child<'a>(data: &'a [u8], kind: &[u8]) -> Option<&'a [u8]> {
    boxes(data).find(|(k, _)| *k == kind).map(|(_, p)| p)
}

/// The sample entries of every track in an MP4 (init segment): (fourcc, entry payload).
fn sample_entries(mp4: &[u8]) -> Vec<(&[u8], &[u8])> {
    let Some(moov) = child(mp4, b"moov") else {
        return Vec::new();
    };
    boxes(moov)
        .filter(|(k, _)| *k == b"trak")
        .filter_map(|(_, trak)| {
            let stbl = [b"mdia", b"minf", b"stbl"]
                .iter()
                .try_fold(trak, |b, k| child(b, *k))?;
            // stsd is a full box (4 bytes) with an entry count (4 bytes).
            child(stbl, b"stsd")?.get(8..)
        })
        .flat_map(boxes)
        .collect()
}

/// An MPEG-4 descriptor's (tag, body) at the start of `data`, and what follows it.
fn descriptor(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *data.first()?;
    let mut len = 0usize;
    let mut at = 1;
    loop {
        let b = *data.get(at)?;
        len = (len << 7) | usize::from(b & 0x7f);
        at += 1;
        if b & 0x80 == 0 || at > 4 {
            break;
        }
    }
    let body = data.get(at..at + len)?;
    Some((tag, body, &data[at + len..]))
}

/// The audio object type in an `esds` box: ES_Descriptor → DecoderConfigDescriptor (MPEG-4
/// audio) → DecoderSpecificInfo (AudioSpecificConfig's first five bits).
fn esds_object_type(esds: &[u8]) -> Option<u8> {
    let (tag, es, _) = descriptor(esds.get(4..)?)?;
    if tag != 3 {
        return None;
    }
    let flags = *es.get(2)?;
    let mut at = 3;
    if flags & 0x80 != 0 {
        at += 2;
    }
    if flags & 0x40 != 0 {
        at += 1 + usize::from(*es.get(at)?);
    }
    if flags & 0x20 != 0 {
        at += 2;
    }
    let (tag, config, _) = descriptor(es.get(at..)?)?;
    if tag != 4 || *config.first()? != 0x40 {
        return None;
    }
    let (tag, info, _) = descriptor(config.get(13..)?)?;
    (tag == 5).then_some(info.first()? >> 3)
}

/// The codec strings of the tracks in an init segment, in track order.
pub fn from_mp4(init: &[u8]) -> Result<Vec<String>, PackageError> {
    let entries = sample_entries(init);
    if entries.is_empty() {
        return Err(malformed(
            "its init segment has no track with a sample entry",
        ));
    }
    // A visual sample entry's child boxes start after 78 bytes, an audio one's after 28.
    entries
        .into_iter()
        .map(|(kind, entry)| match kind {
            b"avc1" | b"avc3" => {
                let c = entry
                    .get(78..)
                    .and_then(|b| child(b, b"avcC"))
                    .filter(|c| c.len() >= 4)
                    .ok_or_else(|| malformed("its avc1 sample entry has no avcC"))?;
                Ok(avc_string(c[1], c[2], c[3]))
            }
            b"hvc1" => entry
                .get(78..)
                .and_then(|b| child(b, b"hvcC"))
                .and_then(|c| hevc_string(c.get(1..)?))
                .ok_or_else(|| malformed("its hvc1 sample entry has no readable hvcC")),
            b"hev1" => Err(refuse(
                "HEVC is tagged hev1; HLS players (Apple's) need hvc1 (parameter sets out of \
                 band): encode with the hvc1 tag",
            )),
            b"mp4a" => {
                let object_type = entry
                    .get(28..)
                    .and_then(|b| child(b, b"esds"))
                    .and_then(esds_object_type)
                    .ok_or_else(|| refuse("its mp4a sample entry is not MPEG-4 AAC"))?;
                aac_string(object_type)
            }
            other => Err(refuse(format!(
                "codec '{}' cannot be signalled in an HLS package; use H.264, HEVC (hvc1) or \
                 AAC-LC",
                String::from_utf8_lossy(other)
            ))),
        })
        .collect()
}

/// `data` without H.264/HEVC emulation prevention bytes (the 3 in 00 00 03).
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// The first SPS's codec string in an Annex B byte stream.
fn from_annex_b(stream: &[u8], hevc: bool) -> Option<String> {
    let starts = stream
        .windows(3)
        .enumerate()
        .filter(|(_, w)| *w == [0, 0, 1])
        .map(|(i, _)| i + 3);
    for at in starts {
        let nal = stream.get(at..(at + 32).min(stream.len()))?;
        let header = *nal.first()?;
        if hevc && (header >> 1) & 0x3f == 33 {
            // Two header bytes, then vps id / max sub-layers / nesting in one byte.
            return hevc_string(unescape(nal.get(3..)?).as_slice());
        }
        if !hevc && header & 0x1f == 7 {
            let sps = unescape(nal.get(1..)?);
            return Some(avc_string(*sps.first()?, *sps.get(1)?, *sps.get(2)?));
        }
    }
    None
}

/// The payload of a 188-byte TS packet: (pid, payload unit start, payload).
fn ts_packets(ts: &[u8]) -> impl Iterator<Item = (u16, bool, &[u8])> {
    ts.chunks_exact(188)
        .filter(|p| p[0] == 0x47)
        .filter_map(|p| {
            let pid = u16::from_be_bytes([p[1] & 0x1f, p[2]]);
            let start = p[1] & 0x40 != 0;
            let offset = match (p[3] >> 4) & 3 {
                1 => 4,
                3 => 5 + usize::from(p[4]),
                _ => return None,
            };
            Some((pid, start, p.get(offset..)?))
        })
}

/// A PSI section (PAT or PMT) from the first packet of `pid`: the bytes after its pointer
/// field, cut to the section length.
fn section(ts: &[u8], pid: u16) -> Option<&[u8]> {
    let (_, _, payload) = ts_packets(ts).find(|(p, start, _)| *p == pid && *start)?;
    let pointer = usize::from(*payload.first()?);
    let table = payload.get(1 + pointer..)?;
    let len = usize::from(u16::from_be_bytes([*table.get(1)? & 0x0f, *table.get(2)?]));
    table.get(..3 + len)
}

/// The elementary streams of the first program: (stream type, pid).
fn ts_streams(ts: &[u8]) -> Option<Vec<(u8, u16)>> {
    let pat = section(ts, 0)?;
    let pmt_pid = u16::from_be_bytes([*pat.get(10)? & 0x1f, *pat.get(11)?]);
    let pmt = section(ts, pmt_pid)?;
    let info_len = usize::from(u16::from_be_bytes([*pmt.get(10)? & 0x0f, *pmt.get(11)?]));
    // The entries end before the 4-byte CRC.
    let mut entries = pmt.get(12 + info_len..pmt.len().checked_sub(4)?)?;
    let mut found = Vec::new();
    while entries.len() >= 5 {
        let pid = u16::from_be_bytes([entries[1] & 0x1f, entries[2]]);
        let es_len = usize::from(u16::from_be_bytes([entries[3] & 0x0f, entries[4]]));
        found.push((entries[0], pid));
        entries = entries.get(5 + es_len..)?;
    }
    Some(found)
}

/// The elementary stream bytes of `pid`, PES headers removed, up to [`MAX_SCAN_BYTES`].
fn elementary(ts: &[u8], pid: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let mut started = false;
    for (_, start, payload) in ts_packets(ts).filter(|(p, ..)| *p == pid) {
        let data = if start {
            started = true;
            // 00 00 01, stream id, length (2), flags (2), header data length.
            match payload.get(8) {
                Some(n) if payload.starts_with(&[0, 0, 1]) => {
                    payload.get(9 + usize::from(*n)..).unwrap_or(&[])
                }
                _ => continue,
            }
        } else if started {
            payload
        } else {
            continue;
        };
        out.extend_from_slice(data);
        if out.len() > MAX_SCAN_BYTES {
            break;
        }
    }
    out
}

/// The codec strings of the streams in an MPEG-TS segment, in PMT order.
pub fn from_ts(ts: &[u8]) -> Result<Vec<String>, PackageError> {
    let streams = ts_streams(ts).ok_or_else(|| malformed("its first segment has no PAT/PMT"))?;
    streams
        .into_iter()
        .map(|(kind, pid)| match kind {
            0x1b | 0x24 => {
                let hevc = kind == 0x24;
                from_annex_b(&elementary(ts, pid), hevc).ok_or_else(|| {
                    malformed(format!(
                        "no {} SPS in its first segment",
                        if hevc { "HEVC" } else { "H.264" }
                    ))
                })
            }
            0x0f => {
                let es = elementary(ts, pid);
                // ADTS: 12 sync bits, then profile (object type − 1) in the third byte.
                let header = es
                    .windows(3)
                    .find(|w| w[0] == 0xff && w[1] & 0xf0 == 0xf0)
                    .ok_or_else(|| malformed("no ADTS header in its first segment"))?;
                aac_string((header[2] >> 6) + 1)
            }
            other => Err(refuse(format!(
                "MPEG-TS stream type 0x{other:02x} cannot be signalled in an HLS package; use \
                 H.264, HEVC or AAC-LC"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hevc_strings_follow_annex_e() {
        // Main profile, Main tier, level 3.1 (93), progressive/non-packed/frame-only.
        let ptl = [0x01, 0x60, 0, 0, 0, 0xb0, 0, 0, 0, 0, 0, 93];
        assert_eq!(hevc_string(&ptl).unwrap(), "hvc1.1.6.L93.B0");
        // Main 10, High tier, level 5.1, profile space 1.
        let ptl = [0x62, 0x20, 0, 0, 0, 0x90, 0, 0, 0, 0, 0x01, 153];
        assert_eq!(hevc_string(&ptl).unwrap(), "hvc1.A2.4.H153.90.0.0.0.0.1");
        assert_eq!(avc_string(0x64, 0x00, 0x1f), "avc1.64001f");
    }

    #[test]
    fn an_sps_is_found_in_annex_b_and_unescaped() {
        let h264 = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xda,
        ];
        assert_eq!(from_annex_b(&h264, false).unwrap(), "avc1.42c01e");
        // HEVC SPS: header 42 01, then 01, then the PTL with an emulation prevention byte
        // after two zero constraint bytes.
        let hevc = [
            0, 0, 1, 0x42, 0x01, 0x01, 0x01, 0x60, 0, 0, 3, 0, 0xb0, 0, 0, 3, 0, 0, 0, 90,
        ];
        assert_eq!(from_annex_b(&hevc, true).unwrap(), "hvc1.1.6.L90.B0");
    }

    fn bx(kind: &[u8], payload: &[u8]) -> Vec<u8> {
        [&(8 + payload.len() as u32).to_be_bytes()[..], kind, payload].concat()
    }

    fn init_with(entry: Vec<u8>) -> Vec<u8> {
        let stsd = bx(b"stsd", &[&[0u8, 0, 0, 0, 0, 0, 0, 1][..], &entry].concat());
        let stbl = bx(b"stbl", &stsd);
        let trak = bx(b"trak", &bx(b"mdia", &bx(b"minf", &stbl)));
        [bx(b"ftyp", b"iso5"), bx(b"moov", &trak)].concat()
    }

    #[test]
    fn sample_entries_are_read_and_unknown_codecs_refused() {
        let avcc = bx(b"avcC", &[1, 0x4d, 0x40, 0x1e, 0xff]);
        let avc1 = bx(b"avc1", &[&[0u8; 78][..], &avcc].concat());
        assert_eq!(from_mp4(&init_with(avc1)).unwrap(), ["avc1.4d401e"]);

        let hev1 = bx(b"hev1", &[0u8; 78]);
        let err = from_mp4(&init_with(hev1)).unwrap_err();
        assert!(err.to_string().contains("hvc1"), "{err}");
        let opus = bx(b"Opus", &[0u8; 28]);
        assert!(matches!(
            from_mp4(&init_with(opus)),
            Err(PackageError::Refused(_))
        ));
        assert!(from_mp4(b"not an mp4").is_err());

        let err = aac_string(5).unwrap_err();
        assert!(err.to_string().contains("AAC-LC"), "{err}");
    }
}
