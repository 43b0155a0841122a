//! Reading an HLS media playlist that ffmpeg's hls muxer wrote: its segments (URI, EXTINF
//! duration, byte range), its init segment (`EXT-X-MAP`) and its version, and measuring the
//! segment files on disk.
//!
//! The playlist is treated as untrusted text: every URI must be a relative path inside the
//! rendition's directory (no scheme, no `..`, no absolute path) naming a regular file, never a
//! symlink.
//!
//! Not here: the master playlist (that is [`super`]).

use std::path::{Component, Path, PathBuf};

use super::PackageError;

/// The largest media playlist read: a VOD playlist of tens of thousands of segments fits.
pub const MAX_PLAYLIST_BYTES: u64 = 4 << 20;

/// One media segment as the playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub uri: String,
    pub duration_s: f64,
    /// `EXT-X-BYTERANGE`'s length, when the segment is a range of a larger file.
    pub range_len: Option<u64>,
}

/// A parsed media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    pub version: u32,
    /// `EXT-X-MAP`'s URI: fMP4 renditions have one, MPEG-TS ones do not.
    pub init: Option<String>,
    pub segments: Vec<Segment>,
}

/// What the segments of a rendition weigh: its peak and average bit rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// The highest of each media segment's bytes × 8 / its EXTINF duration, in bit/s.
    pub peak_bps: u64,
    /// All media segments' bytes × 8 / their total duration, in bit/s.
    pub average_bps: u64,
}

fn malformed(why: impl Into<String>) -> PackageError {
    PackageError::Rendition(why.into())
}

/// The value of `KEY=` in an attribute list, unquoted.
pub fn attribute<'a>(list: &'a str, key: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=')?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], quoted[end + 1..].trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        if name.trim() == key {
            return Some(value);
        }
        rest = next;
    }
    None
}

/// Parses a media playlist's text.
pub fn parse(text: &str) -> Result<MediaPlaylist, PackageError> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("#EXTM3U") {
        return Err(malformed("its playlist does not start with #EXTM3U"));
    }
    let mut playlist = MediaPlaylist {
        version: 1,
        init: None,
        segments: Vec::new(),
    };
    let mut duration = None;
    let mut range_len = None;
    for line in lines {
        if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
            playlist.version = v
                .parse()
                .map_err(|_| malformed(format!("bad EXT-X-VERSION '{v}'")))?;
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-MAP:") {
            let uri = attribute(attrs, "URI").ok_or_else(|| malformed("EXT-X-MAP has no URI"))?;
            playlist.init = Some(uri.to_owned());
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let d: f64 = v
                .split(',')
                .next()
                .and_then(|d| d.trim().parse().ok())
                .filter(|d: &f64| d.is_finite() && *d >= 0.0)
                .ok_or_else(|| malformed(format!("bad EXTINF '{v}'")))?;
            duration = Some(d);
        } else if let Some(v) = line.strip_prefix("#EXT-X-BYTERANGE:") {
            let len = v.split('@').next().and_then(|n| n.trim().parse().ok());
            range_len = Some(len.ok_or_else(|| malformed(format!("bad EXT-X-BYTERANGE '{v}'")))?);
        } else if !line.starts_with('#') {
            let duration_s = duration
                .take()
                .ok_or_else(|| malformed(format!("segment '{line}' has no EXTINF")))?;
            playlist.segments.push(Segment {
                uri: line.to_owned(),
                duration_s,
                range_len: range_len.take(),
            });
        }
    }
    if playlist.segments.is_empty() {
        return Err(malformed("its playlist lists no segments"));
    }
    Ok(playlist)
}

/// `uri` resolved inside `dir`, refused when it could leave it or is not a plain relative path.
pub fn resolve(dir: &Path, uri: &str) -> Result<PathBuf, PackageError> {
    let path = Path::new(uri);
    let plain = !uri.contains("://")
        && !uri.contains(['?', '#', '\\'])
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !plain || path.as_os_str().is_empty() {
        return Err(malformed(format!(
            "'{uri}' is not a relative path inside the rendition"
        )));
    }
    Ok(dir.join(path))
}

/// The size of a regular file inside the rendition (never a symlink).
pub fn file_size(dir: &Path, uri: &str) -> Result<u64, PackageError> {
    let path = resolve(dir, uri)?;
    let meta = std::fs::symlink_metadata(&path)
        .map_err(|e| malformed(format!("'{uri}' cannot be read: {e}")))?;
    if !meta.file_type().is_file() {
        return Err(malformed(format!("'{uri}' is not a regular file")));
    }
    Ok(meta.len())
}

/// Reads and parses `index.m3u8` in `dir`.
pub fn read(dir: &Path) -> Result<MediaPlaylist, PackageError> {
    let size = file_size(dir, super::MEDIA_PLAYLIST)?;
    if size > MAX_PLAYLIST_BYTES {
        return Err(malformed(format!(
            "its playlist is {size} bytes, over {MAX_PLAYLIST_BYTES}"
        )));
    }
    let text = std::fs::read_to_string(dir.join(super::MEDIA_PLAYLIST))
        .map_err(|e| malformed(format!("its playlist cannot be read: {e}")))?;
    parse(&text)
}

/// Peak and average bit rate of the media segments, from their sizes on disk (or their byte
/// ranges). The init segment is not counted: it is fetched once per rendition, not per
/// segment, and Apple's validator measures media segments the same way.
pub fn rates(dir: &Path, playlist: &MediaPlaylist) -> Result<Rates, PackageError> {
    let mut peak = 0f64;
    let mut bytes = 0u64;
    let mut seconds = 0f64;
    for s in &playlist.segments {
        let size = match s.range_len {
            Some(len) => {
                file_size(dir, &s.uri)?;
                len
            }
            None => file_size(dir, &s.uri)?,
        };
        bytes += size;
        seconds += s.duration_s;
        if s.duration_s > 0.0 {
            peak = peak.max(size as f64 * 8.0 / s.duration_s);
        }
    }
    if seconds <= 0.0 {
        return Err(malformed("its segments last no time"));
    }
    Ok(Rates {
        peak_bps: peak.ceil() as u64,
        average_bps: (bytes as f64 * 8.0 / seconds).ceil() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FMP4: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n\
        #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init.mp4\"\n\
        #EXTINF:2.000000,\nseg000.m4s\n#EXTINF:2.000000,\nseg001.m4s\n#EXTINF:1.520000,\n\
        seg002.m4s\n#EXT-X-ENDLIST\n";

    #[test]
    fn parses_what_ffmpegs_hls_muxer_writes() {
        let p = parse(FMP4).unwrap();
        assert_eq!(p.version, 7);
        assert_eq!(p.init.as_deref(), Some("init.mp4"));
        assert_eq!(p.segments.len(), 3);
        assert_eq!(p.segments[2].uri, "seg002.m4s");
        assert_eq!(p.segments[2].duration_s, 1.52);
        let ranged = "#EXTM3U\n#EXT-X-VERSION:4\n#EXTINF:2.0,\n#EXT-X-BYTERANGE:1000@0\nall.ts\n";
        assert_eq!(parse(ranged).unwrap().segments[0].range_len, Some(1000));
        assert!(parse("#EXTM3U\n#EXT-X-ENDLIST\n").is_err());
        assert!(parse("seg.ts\n").is_err());
    }

    #[test]
    fn attribute_lists_are_read_with_quotes_and_commas() {
        let list = "TYPE=AUDIO,NAME=\"a, b\",URI=\"x/index.m3u8\"";
        assert_eq!(attribute(list, "NAME"), Some("a, b"));
        assert_eq!(attribute(list, "URI"), Some("x/index.m3u8"));
        assert_eq!(attribute(list, "TYPE"), Some("AUDIO"));
        assert_eq!(attribute(list, "LANGUAGE"), None);
    }

    #[test]
    fn uris_that_leave_the_rendition_are_refused() {
        let dir = Path::new("/job/out/720p");
        assert_eq!(
            resolve(dir, "seg000.m4s").unwrap(),
            Path::new("/job/out/720p/seg000.m4s")
        );
        for bad in [
            "../secret",
            "/etc/passwd",
            "http://x/y.ts",
            "a/../../b",
            "",
            "s.ts?x",
        ] {
            assert!(resolve(dir, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn peak_and_average_come_from_the_segment_files() {
        let dir = tempfile::tempdir().unwrap();
        for (name, size) in [
            ("seg000.m4s", 1000),
            ("seg001.m4s", 3000),
            ("seg002.m4s", 500),
        ] {
            std::fs::write(dir.path().join(name), vec![0u8; size]).unwrap();
        }
        std::fs::write(dir.path().join("init.mp4"), vec![0u8; 100_000]).unwrap();
        let rates = rates(dir.path(), &parse(FMP4).unwrap()).unwrap();
        assert_eq!(rates.peak_bps, 12_000);
        assert_eq!(rates.average_bps, (4500.0f64 * 8.0 / 5.52).ceil() as u64);
        std::fs::remove_file(dir.path().join("seg001.m4s")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("seg001.m4s")).unwrap();
        assert!(super::rates(dir.path(), &parse(FMP4).unwrap()).is_err());
    }
}
