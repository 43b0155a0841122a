//! An image output's EXIF, XMP and ICC profile: read from the source image and written into the
//! encoded output, because ffmpeg 5.1 drops EXIF in every image encoder and the ICC profile in
//! WebP.
//!
//! Read from JPEG (APP1 `Exif`, APP1 XMP, APP2 `ICC_PROFILE` chunks), PNG (`eXIf`, `iTXt`
//! `XML:com.adobe.xmp`, `iCCP`) and WebP (`EXIF`, `XMP `, `ICCP`); written into JPEG, PNG and WebP
//! (a simple WebP becomes an extended one with the VP8X flags set). AVIF is refused: its
//! metadata lives in HEIF item boxes (`iinf`/`iloc`/`iprp`) that this module does not rewrite.
//! EXIF's orientation is reset to 1 when the caller says the pixels were already rotated, so a
//! viewer does not rotate them twice. The probe finds an input's orientation with [`read_exif`],
//! which steps over the file's segments or chunks and reads only the start of its EXIF.
//!
//! Strip mode is the caller dropping the metadata. Converting to sRGB first is not possible from
//! an ICC profile with Debian's ffmpeg 5.1: it has no `iccdetect`/`iccgen` filters (FFmpeg 6.0
//! added them) and no ICC-driven conversion at all (no lcms2). What it can do is convert
//! between the standard primaries and transfers a stream is tagged with (`zscale`, `colorspace`);
//! [`srgb_filter`] gives that chain for a profile whose colorants are recognised as Display P3
//! (which shares sRGB's transfer curve), and refuses other profiles rather than shift their colours silently.
//!
//! Not here: encoding the image (that is the renderer's ffmpeg step).

use std::io::{Read, Seek, SeekFrom, Write};

use crate::error::{ErrorCode, JobError};
use crate::model::ImageFormat;

/// The metadata of one image, each part as its container carries it unwrapped: EXIF as TIFF
/// bytes (`II*\0`/`MM\0*`), XMP as its XML packet, the ICC profile as the profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub exif: Option<Vec<u8>>,
    pub xmp: Option<Vec<u8>>,
    pub icc: Option<Vec<u8>>,
}

impl Metadata {
    pub fn is_empty(&self) -> bool {
        self.exif.is_none() && self.xmp.is_none() && self.icc.is_none()
    }
}

/// Why metadata could not be read or written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetaError {
    /// The image's container is not what its signature says.
    #[error("the image is not a well-formed {0}: {1}")]
    Malformed(&'static str, String),
    /// What the plan asked for cannot be done (AVIF, a profile ffmpeg cannot convert, metadata
    /// too large for its container): the plan's to change.
    #[error("{0}")]
    Unsupported(String),
}

impl MetaError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Malformed(..) => ErrorCode::FfmpegFailed,
            Self::Unsupported(_) => ErrorCode::PlanRejected,
        }
    }
}

impl From<MetaError> for JobError {
    fn from(e: MetaError) -> Self {
        JobError::new(e.code(), "metadata", e.to_string())
    }
}

const JPEG_EXIF: &[u8] = b"Exif\0\0";
const JPEG_XMP: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const JPEG_ICC: &[u8] = b"ICC_PROFILE\0";
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
const PNG_XMP_KEYWORD: &[u8] = b"XML:com.adobe.xmp";
/// The most profile bytes in one JPEG APP2 segment (65535 − length − tag − sequence bytes).
const JPEG_ICC_CHUNK: usize = 65535 - 2 - 12 - 2;

/// Reads the metadata of a JPEG, PNG or WebP image (by its signature).
pub fn read(image: &[u8]) -> Result<Metadata, MetaError> {
    if image.starts_with(&[0xff, 0xd8]) {
        read_jpeg(image)
    } else if image.starts_with(PNG_SIGNATURE) {
        read_png(image)
    } else if image.starts_with(b"RIFF") && image.get(8..12) == Some(b"WEBP") {
        read_webp(image)
    } else {
        Err(MetaError::Unsupported(
            "only JPEG, PNG and WebP sources carry metadata the host copies".into(),
        ))
    }
}

/// Writes `meta` into an encoded image of `format`, replacing what it carried; with
/// `pixels_rotated`, EXIF orientation is reset to 1.
pub fn write(
    encoded: &[u8],
    format: ImageFormat,
    meta: &Metadata,
    pixels_rotated: bool,
) -> Result<Vec<u8>, MetaError> {
    let mut meta = meta.clone();
    if pixels_rotated && let Some(exif) = &mut meta.exif {
        reset_orientation(exif);
    }
    match format {
        ImageFormat::Jpeg => write_jpeg(encoded, &meta),
        ImageFormat::Png => write_png(encoded, &meta),
        ImageFormat::Webp => write_webp(encoded, &meta),
        ImageFormat::Avif => Err(MetaError::Unsupported(
            "copying metadata into AVIF is not supported: choose JPEG, PNG or WebP to keep it, \
             or strip it"
                .into(),
        )),
    }
}

/// Where IFD0's orientation tag (0x0112, one SHORT) keeps its value in TIFF bytes, and
/// whether they are big-endian.
fn orientation_at(tiff: &[u8]) -> Option<(usize, bool)> {
    let big = match tiff.get(..4)? {
        b"MM\0*" => true,
        b"II*\0" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = [*tiff.get(at)?, *tiff.get(at + 1)?];
        Some(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let b: [u8; 4] = tiff.get(4..8)?.try_into().ok()?;
    let ifd = (if big {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }) as usize;
    (0..usize::from(u16_at(ifd)?))
        .map(|i| ifd + 2 + 12 * i)
        .find(|&entry| u16_at(entry) == Some(0x0112) && u16_at(entry + 2) == Some(3))
        .map(|entry| (entry + 8, big))
        .filter(|(at, _)| at + 2 <= tiff.len())
}

/// EXIF orientation (1 to 8) in TIFF bytes, when present.
pub fn orientation(tiff: &[u8]) -> Option<u16> {
    let (at, big) = orientation_at(tiff)?;
    let b = [tiff[at], tiff[at + 1]];
    Some(if big {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    })
}

/// The most bytes of an EXIF block [`read_exif`] reads: IFD0, which holds the orientation,
/// comes first.
const EXIF_HEAD_BYTES: u64 = 64 << 10;
/// The most segments or chunks [`read_exif`] steps over before giving up.
const MAX_WALKED: usize = 1 << 16;

/// The start of the EXIF block (TIFF bytes, at most 64 KiB) of a JPEG, PNG or WebP file,
/// found without reading the file whole: its segments or chunks are stepped over by their
/// lengths. A TIFF file is its own: its start is returned. `None` for another format, no
/// EXIF, or a container cut short.
pub fn read_exif<F: Read + Seek>(file: &mut F) -> std::io::Result<Option<Vec<u8>>> {
    match walk_to_exif(file) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        other => other,
    }
}

/// The first `len` bytes at the file's position, at most an EXIF head (and its JPEG prefix).
fn exif_head(file: &mut impl Read, len: u64) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    file.take(len.min(EXIF_HEAD_BYTES + JPEG_EXIF.len() as u64))
        .read_to_end(&mut data)?;
    Ok(data)
}

fn walk_to_exif<F: Read + Seek>(file: &mut F) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = [0u8; 12];
    file.read_exact(&mut head)?;
    if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        file.seek(SeekFrom::Start(0))?;
        return exif_head(file, EXIF_HEAD_BYTES).map(Some);
    }
    if head.starts_with(&[0xff, 0xd8]) {
        file.seek(SeekFrom::Start(2))?;
        for _ in 0..MAX_WALKED {
            let mut marker = [0u8; 4];
            file.read_exact(&mut marker)?;
            // The metadata segments all come before the scan.
            if marker[0] != 0xff || matches!(marker[1], 0xda | 0xd9) {
                return Ok(None);
            }
            let len = u64::from(u16::from_be_bytes([marker[2], marker[3]]));
            let Some(payload_len) = len.checked_sub(2) else {
                return Ok(None);
            };
            if marker[1] == 0xe1 {
                let payload = exif_head(file, payload_len)?;
                if let Some(tiff) = payload.strip_prefix(JPEG_EXIF) {
                    return Ok(Some(tiff.to_vec()));
                }
                file.seek(SeekFrom::Current(
                    (payload_len - payload.len() as u64) as i64,
                ))?;
            } else {
                file.seek(SeekFrom::Current(payload_len as i64))?;
            }
        }
    } else if head.starts_with(PNG_SIGNATURE) {
        file.seek(SeekFrom::Start(PNG_SIGNATURE.len() as u64))?;
        for _ in 0..MAX_WALKED {
            let mut chunk = [0u8; 8];
            file.read_exact(&mut chunk)?;
            let len = u64::from(u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
            match &chunk[4..] {
                b"eXIf" => return exif_head(file, len).map(Some),
                b"IEND" => return Ok(None),
                // The data and its CRC.
                _ => file.seek(SeekFrom::Current(len as i64 + 4))?,
            };
        }
    } else if head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        for _ in 0..MAX_WALKED {
            let mut chunk = [0u8; 8];
            file.read_exact(&mut chunk)?;
            let len = u64::from(u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]));
            if &chunk[..4] == b"EXIF" {
                let data = exif_head(file, len)?;
                // Some writers keep JPEG's "Exif\0\0" in front of the TIFF bytes.
                return Ok(Some(data.strip_prefix(JPEG_EXIF).unwrap_or(&data).to_vec()));
            }
            // Chunks are padded to an even length.
            file.seek(SeekFrom::Current((len + (len & 1)) as i64))?;
        }
    }
    Ok(None)
}

/// Sets EXIF's orientation to 1, "as stored". Returns whether the tag was there.
pub fn reset_orientation(tiff: &mut [u8]) -> bool {
    let Some((at, big)) = orientation_at(tiff) else {
        return false;
    };
    tiff[at..at + 2].copy_from_slice(if big { &[0, 1] } else { &[1, 0] });
    true
}

// ---- JPEG

/// The marker segments before the scan: (marker, payload) and the offset where they end.
/// A JPEG marker segment before the scan: its marker and payload.
type JpegSegment<'a> = (u8, &'a [u8]);
/// A PNG or RIFF chunk: its four-byte type and its data.
type Chunk<'a> = (&'a [u8], &'a [u8]);

fn jpeg_segments(jpeg: &[u8]) -> Result<(Vec<JpegSegment<'_>>, usize), MetaError> {
    let bad = |why: &str| MetaError::Malformed("JPEG", why.to_owned());
    let mut at = 2;
    let mut segments = Vec::new();
    loop {
        if jpeg.get(at) != Some(&0xff) {
            return Err(bad("a marker was expected"));
        }
        let marker = *jpeg.get(at + 1).ok_or_else(|| bad("cut short"))?;
        if marker == 0xda || marker == 0xd9 {
            return Ok((segments, at));
        }
        let len = jpeg
            .get(at + 2..at + 4)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or_else(|| bad("cut short"))?;
        let payload = jpeg
            .get(at + 4..at + 2 + len)
            .filter(|_| len >= 2)
            .ok_or_else(|| bad("a segment runs past the end"))?;
        segments.push((marker, payload));
        at += 2 + len;
    }
}

fn read_jpeg(jpeg: &[u8]) -> Result<Metadata, MetaError> {
    let (segments, _) = jpeg_segments(jpeg)?;
    let mut meta = Metadata::default();
    let mut icc: Vec<(u8, &[u8])> = Vec::new();
    for (marker, p) in segments {
        match marker {
            0xe1 if p.starts_with(JPEG_EXIF) => meta.exif = Some(p[JPEG_EXIF.len()..].to_vec()),
            0xe1 if p.starts_with(JPEG_XMP) => meta.xmp = Some(p[JPEG_XMP.len()..].to_vec()),
            0xe2 if p.starts_with(JPEG_ICC) && p.len() >= 14 => icc.push((p[12], &p[14..])),
            _ => {}
        }
    }
    if !icc.is_empty() {
        icc.sort_by_key(|(seq, _)| *seq);
        meta.icc = Some(icc.into_iter().flat_map(|(_, d)| d.to_vec()).collect());
    }
    Ok(meta)
}

fn jpeg_segment(out: &mut Vec<u8>, marker: u8, parts: &[&[u8]]) -> Result<(), MetaError> {
    let len: usize = 2 + parts.iter().map(|p| p.len()).sum::<usize>();
    let len = u16::try_from(len).map_err(|_| {
        MetaError::Unsupported(format!(
            "a JPEG segment holds at most 65533 bytes; this metadata needs {}",
            len - 2
        ))
    })?;
    out.extend_from_slice(&[0xff, marker]);
    out.extend_from_slice(&len.to_be_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
    Ok(())
}

fn write_jpeg(jpeg: &[u8], meta: &Metadata) -> Result<Vec<u8>, MetaError> {
    let (segments, scan) = jpeg_segments(jpeg)?;
    let mut out = vec![0xff, 0xd8];
    let replaced = |marker: u8, p: &[u8]| {
        (marker == 0xe1 && (p.starts_with(JPEG_EXIF) || p.starts_with(JPEG_XMP)))
            || (marker == 0xe2 && p.starts_with(JPEG_ICC))
    };
    // JFIF's APP0 must stay first; the metadata follows it.
    let (app0, rest): (Vec<_>, Vec<_>) = segments.into_iter().partition(|(m, _)| *m == 0xe0);
    for (m, p) in app0 {
        jpeg_segment(&mut out, m, &[p])?;
    }
    if let Some(exif) = &meta.exif {
        jpeg_segment(&mut out, 0xe1, &[JPEG_EXIF, exif])?;
    }
    if let Some(xmp) = &meta.xmp {
        jpeg_segment(&mut out, 0xe1, &[JPEG_XMP, xmp])?;
    }
    if let Some(icc) = &meta.icc {
        let chunks: Vec<&[u8]> = icc.chunks(JPEG_ICC_CHUNK).collect();
        let count = u8::try_from(chunks.len())
            .map_err(|_| MetaError::Unsupported("the ICC profile is too large for JPEG".into()))?;
        for (i, c) in chunks.iter().enumerate() {
            jpeg_segment(&mut out, 0xe2, &[JPEG_ICC, &[i as u8 + 1, count], c])?;
        }
    }
    for (m, p) in rest.into_iter().filter(|(m, p)| !replaced(*m, p)) {
        jpeg_segment(&mut out, m, &[p])?;
    }
    out.extend_from_slice(&jpeg[scan..]);
    Ok(out)
}

// ---- PNG

fn png_chunks(png: &[u8]) -> Result<Vec<Chunk<'_>>, MetaError> {
    let mut at = PNG_SIGNATURE.len();
    let mut chunks = Vec::new();
    while at < png.len() {
        let len = png
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| MetaError::Malformed("PNG", "cut short".into()))?;
        let kind = &png[at + 4..(at + 8).min(png.len())];
        let data = png
            .get(at + 8..at + 8 + len)
            .filter(|_| png.len() >= at + 12 + len)
            .ok_or_else(|| MetaError::Malformed("PNG", "a chunk runs past the end".into()))?;
        chunks.push((kind, data));
        at += 12 + len;
    }
    Ok(chunks)
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

fn read_png(png: &[u8]) -> Result<Metadata, MetaError> {
    let mut meta = Metadata::default();
    for (kind, data) in png_chunks(png)? {
        match kind {
            b"eXIf" => meta.exif = Some(data.to_vec()),
            b"iCCP" => {
                // name, NUL, compression method (0 = zlib), the compressed profile.
                let name_end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
                let compressed = data.get(name_end + 2..).unwrap_or(&[]);
                let mut icc = Vec::new();
                flate2::read::ZlibDecoder::new(compressed)
                    .take(16 << 20)
                    .read_to_end(&mut icc)
                    .map_err(|e| MetaError::Malformed("PNG", format!("iCCP: {e}")))?;
                meta.icc = Some(icc);
            }
            b"iTXt" if data.starts_with(PNG_XMP_KEYWORD) => {
                // keyword NUL, compressed flag, method, language NUL, translated keyword NUL.
                let rest = &data[PNG_XMP_KEYWORD.len()..];
                if rest.first() == Some(&0) && rest.get(1) == Some(&0) {
                    let mut nuls = rest[3..].iter().enumerate().filter(|(_, b)| **b == 0);
                    if let (Some(_), Some((end, _))) = (nuls.next(), nuls.next()) {
                        meta.xmp = Some(rest[3 + end + 1..].to_vec());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(meta)
}

fn write_png(png: &[u8], meta: &Metadata) -> Result<Vec<u8>, MetaError> {
    if !png.starts_with(PNG_SIGNATURE) {
        return Err(MetaError::Malformed("PNG", "no PNG signature".into()));
    }
    let mut out = PNG_SIGNATURE.to_vec();
    for (kind, data) in png_chunks(png)? {
        let replaced = matches!(kind, b"eXIf" | b"iCCP")
            || (kind == b"iTXt" && data.starts_with(PNG_XMP_KEYWORD))
            // An embedded profile and sRGB/gAMA/cHRM must not disagree: the profile wins.
            || (meta.icc.is_some() && matches!(kind, b"sRGB" | b"gAMA" | b"cHRM"));
        if replaced {
            continue;
        }
        png_chunk(&mut out, kind, data);
        if kind != b"IHDR" {
            continue;
        }
        // iCCP must precede PLTE and IDAT; eXIf and iTXt may come anywhere before IEND.
        if let Some(icc) = &meta.icc {
            let mut data = b"ICC Profile\0\0".to_vec();
            let mut z = flate2::write::ZlibEncoder::new(&mut data, flate2::Compression::best());
            z.write_all(icc)
                .and_then(|()| z.finish().map(|_| ()))
                .map_err(|e| MetaError::Unsupported(format!("compressing the profile: {e}")))?;
            png_chunk(&mut out, b"iCCP", &data);
        }
        if let Some(exif) = &meta.exif {
            png_chunk(&mut out, b"eXIf", exif);
        }
        if let Some(xmp) = &meta.xmp {
            let data = [PNG_XMP_KEYWORD, b"\0\0\0\0\0", xmp].concat();
            png_chunk(&mut out, b"iTXt", &data);
        }
    }
    Ok(out)
}

// ---- WebP

fn webp_chunks(webp: &[u8]) -> Result<Vec<Chunk<'_>>, MetaError> {
    let mut at = 12;
    let mut chunks = Vec::new();
    while at + 8 <= webp.len() {
        let kind = &webp[at..at + 4];
        let len =
            u32::from_le_bytes([webp[at + 4], webp[at + 5], webp[at + 6], webp[at + 7]]) as usize;
        let data = webp
            .get(at + 8..at + 8 + len)
            .ok_or_else(|| MetaError::Malformed("WebP", "a chunk runs past the end".into()))?;
        chunks.push((kind, data));
        at += 8 + len + (len & 1);
    }
    Ok(chunks)
}

fn read_webp(webp: &[u8]) -> Result<Metadata, MetaError> {
    let mut meta = Metadata::default();
    for (kind, data) in webp_chunks(webp)? {
        match kind {
            // Some writers keep JPEG's "Exif\0\0" in front of the TIFF bytes.
            b"EXIF" => meta.exif = Some(data.strip_prefix(JPEG_EXIF).unwrap_or(data).to_vec()),
            b"XMP " => meta.xmp = Some(data.to_vec()),
            b"ICCP" => meta.icc = Some(data.to_vec()),
            _ => {}
        }
    }
    Ok(meta)
}

/// The canvas size of a simple WebP's image chunk, and whether it uses alpha.
fn webp_canvas(kind: &[u8], data: &[u8]) -> Option<(u32, u32, bool)> {
    match kind {
        // Frame tag (3), start code 9d 01 2a, then 14-bit width and height.
        b"VP8 " if data.get(3..6) == Some(&[0x9d, 0x01, 0x2a]) => {
            let size = data.get(6..10)?;
            let w = u16::from_le_bytes([size[0], size[1]]) & 0x3fff;
            let h = u16::from_le_bytes([size[2], size[3]]) & 0x3fff;
            Some((u32::from(w), u32::from(h), false))
        }
        // Signature 0x2f, then 14 bits width − 1, 14 bits height − 1, alpha_is_used.
        b"VP8L" if data.first() == Some(&0x2f) => {
            let b = u32::from_le_bytes(data.get(1..5)?.try_into().ok()?);
            Some((
                (b & 0x3fff) + 1,
                ((b >> 14) & 0x3fff) + 1,
                b & (1 << 28) != 0,
            ))
        }
        _ => None,
    }
}

fn riff_chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
    out.extend_from_slice(kind);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

fn write_webp(webp: &[u8], meta: &Metadata) -> Result<Vec<u8>, MetaError> {
    if !(webp.starts_with(b"RIFF") && webp.get(8..12) == Some(b"WEBP")) {
        return Err(MetaError::Malformed("WebP", "no RIFF WEBP header".into()));
    }
    let chunks = webp_chunks(webp)?;
    let (mut flags, canvas) = match chunks.first() {
        Some((b"VP8X", d)) if d.len() >= 10 => (d[0], d[4..10].to_vec()),
        Some((kind, data)) => {
            let (w, h, alpha) = webp_canvas(kind, data)
                .ok_or_else(|| MetaError::Malformed("WebP", "no image chunk first".into()))?;
            let alpha = if alpha { 0x10 } else { 0 };
            let mut canvas = (w - 1).to_le_bytes()[..3].to_vec();
            canvas.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
            (alpha, canvas)
        }
        None => return Err(MetaError::Malformed("WebP", "no chunks".into())),
    };
    const ICC: u8 = 0x20;
    const EXIF: u8 = 0x08;
    const XMP: u8 = 0x04;
    flags &= !(ICC | EXIF | XMP);
    for (present, bit) in [(&meta.icc, ICC), (&meta.exif, EXIF), (&meta.xmp, XMP)] {
        if present.is_some() {
            flags |= bit;
        }
    }
    let mut body = b"WEBP".to_vec();
    riff_chunk(
        &mut body,
        b"VP8X",
        &[&[flags, 0, 0, 0][..], &canvas].concat(),
    );
    // The order the container requires: VP8X, ICCP, (ANIM, ALPH,) image data, EXIF, XMP.
    if let Some(icc) = &meta.icc {
        riff_chunk(&mut body, b"ICCP", icc);
    }
    for (kind, data) in &chunks {
        if !matches!(*kind, b"VP8X" | b"ICCP" | b"EXIF" | b"XMP ") {
            riff_chunk(&mut body, kind, data);
        }
    }
    if let Some(exif) = &meta.exif {
        riff_chunk(&mut body, b"EXIF", exif);
    }
    if let Some(xmp) = &meta.xmp {
        riff_chunk(&mut body, b"XMP ", xmp);
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

// ---- sRGB

/// An ICC profile's colorants (`rXYZ`, `gXYZ`, `bXYZ`, D50-adapted), when it has them.
fn colorants(icc: &[u8]) -> Option<[[f64; 3]; 3]> {
    let be32 = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(icc.get(at..at + 4)?.try_into().ok()?))
    };
    let count = be32(128)? as usize;
    let mut found = [[f64::NAN; 3]; 3];
    for i in 0..count.min(256) {
        let entry = 132 + 12 * i;
        let sig = icc.get(entry..entry + 4)?;
        let slot = match sig {
            b"rXYZ" => 0,
            b"gXYZ" => 1,
            b"bXYZ" => 2,
            _ => continue,
        };
        let at = be32(entry + 4)? as usize;
        for (c, v) in found[slot].iter_mut().enumerate() {
            *v = f64::from(be32(at + 8 + 4 * c)? as i32) / 65536.0;
        }
    }
    found
        .iter()
        .flatten()
        .all(|v| v.is_finite())
        .then_some(found)
}

/// The profiles [`srgb_filter`] recognises, by their D50 colorants, and the primaries name
/// zscale knows them by. sRGB's own is there so that it needs no conversion.
const KNOWN: [(&str, [[f64; 3]; 3]); 2] = [
    (
        "709",
        [
            [0.4361, 0.2225, 0.0139],
            [0.3851, 0.7169, 0.0971],
            [0.1431, 0.0606, 0.7141],
        ],
    ),
    (
        "smpte432",
        [
            [0.5151, 0.2412, -0.0011],
            [0.2920, 0.6922, 0.0419],
            [0.1571, 0.0666, 0.7841],
        ],
    ),
];

/// The filter chain that brings pixels described by `icc` to sRGB before its metadata is
/// stripped: None when they already are sRGB; an error for a profile ffmpeg 5.1 cannot convert
/// (it cannot apply an ICC profile, only convert between standard primaries, here with the sRGB
/// transfer curve Display P3 and sRGB share). The chain ends in planar RGB (with an alpha plane
/// when `alpha`): zscale keeps YUV input in YUV, and a JPEG's full-range yuvj420p retagged that
/// way reaches an encoder taking limited-range yuv420p (libwebp) with its range and matrix
/// misread, oversaturated; from RGB, each encoder's own conversion is the usual one.
pub fn srgb_filter(icc: &[u8], alpha: bool) -> Result<Option<String>, MetaError> {
    let found = colorants(icc).ok_or_else(|| {
        MetaError::Unsupported(
            "the ICC profile has no RGB colorants; ffmpeg 5.1 cannot convert it to sRGB, so \
             keep the metadata instead of stripping it"
                .into(),
        )
    })?;
    let close = |a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]| {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .all(|(x, y)| (x - y).abs() < 0.003)
    };
    match KNOWN.iter().find(|(_, c)| close(c, &found)) {
        Some(("709", _)) => Ok(None),
        Some((primaries, _)) => Ok(Some(format!(
            "zscale=primariesin={primaries}:transferin=iec61966-2-1:primaries=709:\
             transfer=iec61966-2-1,format={}",
            if alpha { "gbrap" } else { "gbrp" }
        ))),
        None => Err(MetaError::Unsupported(
            "the ICC profile is neither sRGB nor Display P3; ffmpeg 5.1 cannot convert by an \
             ICC profile (no iccdetect, no lcms2), so keep the metadata instead of stripping it"
                .into(),
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;

    /// A profile the host recognises as Display P3, for other modules' tests.
    pub(crate) fn display_p3_profile() -> Vec<u8> {
        profile(KNOWN[1].1)
    }

    /// Little-endian TIFF with one IFD0 entry: orientation = `value`.
    fn exif(value: u16) -> Vec<u8> {
        let mut t = b"II*\0\x08\0\0\0\x01\0".to_vec();
        t.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0]);
        t.extend_from_slice(&value.to_le_bytes());
        t.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        t
    }

    /// A matrix profile with only its colorants: enough to be recognised.
    fn profile(colorants: [[f64; 3]; 3]) -> Vec<u8> {
        let mut p = vec![0u8; 128];
        p[36..40].copy_from_slice(b"acsp");
        p.extend_from_slice(&3u32.to_be_bytes());
        let data_at = 128 + 4 + 3 * 12;
        for (i, sig) in [b"rXYZ", b"gXYZ", b"bXYZ"].iter().enumerate() {
            p.extend_from_slice(*sig);
            p.extend_from_slice(&((data_at + 20 * i) as u32).to_be_bytes());
            p.extend_from_slice(&20u32.to_be_bytes());
        }
        for c in colorants {
            p.extend_from_slice(b"XYZ \0\0\0\0");
            for v in c {
                p.extend_from_slice(&((v * 65536.0).round() as i32).to_be_bytes());
            }
        }
        let len = p.len() as u32;
        p[..4].copy_from_slice(&len.to_be_bytes());
        p
    }

    const XMP_PACKET: &[u8] = b"<?xpacket begin=\"\xef\xbb\xbf\"?><x:xmpmeta xmlns:x=\"adobe:ns:meta/\"/><?xpacket end=\"w\"?>";

    fn meta() -> Metadata {
        Metadata {
            exif: Some(exif(6)),
            xmp: Some(XMP_PACKET.to_vec()),
            icc: Some(profile(KNOWN[1].1)),
        }
    }

    fn ffmpeg(dir: &Path, args: &[&str]) {
        crate::ffmpeg::run_for_test(dir, args);
    }

    #[test]
    fn orientation_is_read_and_reset() {
        let mut t = exif(6);
        assert_eq!(orientation(&t), Some(6));
        assert!(reset_orientation(&mut t));
        assert_eq!(orientation(&t), Some(1));
        let mut big = b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x08\0\0\0\0\0\0".to_vec();
        assert_eq!(orientation(&big), Some(8));
        assert!(reset_orientation(&mut big));
        assert_eq!(orientation(&big), Some(1));
        assert!(!reset_orientation(&mut b"not tiff".to_vec()));
    }

    /// The file's EXIF found by stepping over its segments or chunks, as the probe reads it.
    fn exif_of_file(bytes: &[u8]) -> Option<Vec<u8>> {
        read_exif(&mut std::io::Cursor::new(bytes)).unwrap()
    }

    #[test]
    fn exif_is_found_in_a_file_without_reading_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        for (name, format) in [
            ("a.jpg", ImageFormat::Jpeg),
            ("a.png", ImageFormat::Png),
            ("a.webp", ImageFormat::Webp),
        ] {
            ffmpeg(
                dir.path(),
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc=s=64x48",
                    "-frames:v",
                    "1",
                    name,
                ],
            );
            let plain = std::fs::read(dir.path().join(name)).unwrap();
            assert_eq!(exif_of_file(&plain), None, "{name}");
            // EXIF after a large ICC profile (JPEG: four APP2 segments before it is reached).
            let big_icc: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
            let meta = Metadata {
                exif: Some(exif(6)),
                icc: Some(big_icc),
                ..meta()
            };
            let tagged = write(&plain, format, &meta, false).unwrap();
            let found = exif_of_file(&tagged).unwrap_or_else(|| panic!("{name}: no EXIF"));
            assert_eq!(orientation(&found), Some(6), "{name}");
            // Cut short before the EXIF: nothing, not an error.
            assert_eq!(exif_of_file(&tagged[..20]), None, "{name}");
            let mut file = std::fs::File::open(dir.path().join(name)).unwrap();
            assert_eq!(read_exif(&mut file).unwrap(), None);
        }
        // A PNG may carry eXIf after its image data.
        let png = std::fs::read(dir.path().join("a.png")).unwrap();
        let iend = png.len() - 12;
        let mut late = png[..iend].to_vec();
        png_chunk(&mut late, b"eXIf", &exif(8));
        late.extend_from_slice(&png[iend..]);
        assert_eq!(orientation(&exif_of_file(&late).unwrap()), Some(8));
        // A WebP EXIF chunk with JPEG's prefix.
        let webp = std::fs::read(dir.path().join("a.webp")).unwrap();
        let mut prefixed = webp.clone();
        riff_chunk(&mut prefixed, b"EXIF", &[JPEG_EXIF, &exif(3)].concat());
        assert_eq!(orientation(&exif_of_file(&prefixed).unwrap()), Some(3));
        // A TIFF file: its IFD0 is the EXIF's.
        assert_eq!(orientation(&exif_of_file(&exif(5)).unwrap()), Some(5));
        assert_eq!(exif_of_file(b"not an image at all"), None);
        assert_eq!(exif_of_file(b""), None);
    }

    #[test]
    fn a_large_profile_spans_jpeg_segments() {
        let dir = tempfile::tempdir().unwrap();
        ffmpeg(
            dir.path(),
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc=s=64x48",
                "-frames:v",
                "1",
                "a.jpg",
            ],
        );
        let jpeg = std::fs::read(dir.path().join("a.jpg")).unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let meta = Metadata {
            icc: Some(big),
            ..Metadata::default()
        };
        let written = write(&jpeg, ImageFormat::Jpeg, &meta, false).unwrap();
        assert_eq!(read(&written).unwrap(), meta);
    }

    /// The source: a JPEG from ffmpeg with EXIF (orientation 6), XMP and a Display P3 profile
    /// put in; then each output format encoded by ffmpeg from it and given the metadata back.
    #[test]
    fn metadata_survives_into_jpeg_png_and_webp() {
        let dir = tempfile::tempdir().unwrap();
        ffmpeg(
            dir.path(),
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc=s=64x48",
                "-frames:v",
                "1",
                "plain.jpg",
            ],
        );
        let plain = std::fs::read(dir.path().join("plain.jpg")).unwrap();
        let source = write(&plain, ImageFormat::Jpeg, &meta(), false).unwrap();
        std::fs::write(dir.path().join("src.jpg"), &source).unwrap();
        assert_eq!(read(&source).unwrap(), meta());

        for (format, name, codec) in [
            (ImageFormat::Jpeg, "out.jpg", &["-c:v", "mjpeg"][..]),
            (ImageFormat::Png, "out.png", &["-c:v", "png"]),
            (ImageFormat::Webp, "out.webp", &["-c:v", "libwebp"]),
            (
                ImageFormat::Webp,
                "lossless.webp",
                &["-c:v", "libwebp", "-lossless", "1"],
            ),
        ] {
            let mut args = vec!["-i", "src.jpg", "-frames:v", "1"];
            args.extend(codec);
            args.push(name);
            ffmpeg(dir.path(), &args);
            let encoded = std::fs::read(dir.path().join(name)).unwrap();
            // What makes this module needed: ffmpeg 5.1 kept no EXIF.
            assert_eq!(read(&encoded).unwrap().exif, None, "{name}");

            let kept = write(&encoded, format, &meta(), false).unwrap();
            assert_eq!(read(&kept).unwrap(), meta(), "{name}");
            let rotated = write(&encoded, format, &meta(), true).unwrap();
            let back = read(&rotated).unwrap();
            assert_eq!(
                orientation(back.exif.as_deref().unwrap()),
                Some(1),
                "{name}"
            );
            assert_eq!((back.icc, back.xmp), (meta().icc, meta().xmp), "{name}");

            // The result is still an image ffmpeg decodes.
            let checked = format!("checked-{name}");
            std::fs::write(dir.path().join(&checked), &kept).unwrap();
            ffmpeg(dir.path(), &["-i", &checked, "-f", "null", "-"]);
        }
        let webp = write(
            &std::fs::read(dir.path().join("out.webp")).unwrap(),
            ImageFormat::Webp,
            &meta(),
            false,
        )
        .unwrap();
        assert_eq!(&webp[12..16], b"VP8X");
        assert_eq!(webp[20], 0x20 | 0x08 | 0x04, "ICC, EXIF and XMP flags");
        assert_eq!(
            u32::from_le_bytes(webp[4..8].try_into().unwrap()) as usize,
            webp.len() - 8
        );
        let avif = write(&plain, ImageFormat::Avif, &meta(), false).unwrap_err();
        assert_eq!(JobError::from(avif).code, ErrorCode::PlanRejected);
    }

    #[test]
    fn strip_mode_converts_display_p3_and_refuses_what_ffmpeg_cannot() {
        assert_eq!(srgb_filter(&profile(KNOWN[0].1), false).unwrap(), None);
        let p3 = srgb_filter(&profile(KNOWN[1].1), false).unwrap().unwrap();
        assert!(p3.starts_with("zscale=primariesin=smpte432:"), "{p3}");
        assert!(p3.ends_with(",format=gbrp"), "{p3}");
        let with_alpha = srgb_filter(&profile(KNOWN[1].1), true).unwrap().unwrap();
        assert!(with_alpha.ends_with(",format=gbrap"), "{with_alpha}");
        // Adobe RGB (1998)'s colorants: ffmpeg 5.1 has no such primaries.
        let adobe = [
            [0.6097, 0.3111, 0.0195],
            [0.2053, 0.6257, 0.0609],
            [0.1492, 0.0632, 0.7446],
        ];
        assert!(srgb_filter(&profile(adobe), false).is_err());
        assert!(srgb_filter(b"garbage", false).is_err());

        // On Debian's ffmpeg 5.1 the chain maps P3 (128, 128, 64) to sRGB (128, 128, 53), as
        // the P3-to-sRGB matrix over the shared transfer curve computes it.
        let dir = tempfile::tempdir().unwrap();
        let graph = format!("{p3},format=rgb24");
        let out = Command::new("ffmpeg")
            .current_dir(dir.path())
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "color=c=0x808040:s=4x4,format=rgb24",
            ])
            .args(["-vf", &graph, "-frames:v", "1", "-f", "rawvideo", "-"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pixel = &out.stdout[..3];
        assert!(
            pixel[..2] == [128, 128] && pixel[2].abs_diff(53) <= 1,
            "{pixel:?}"
        );
    }

    /// A JPEG's pixels (full-range yuvj420p) converted and encoded as WebP (limited-range
    /// yuv420p) come out as the matrix says, not oversaturated: P3 (220, 60, 40) is sRGB
    /// (239, 35, 17), within what lossy 4:2:0 coding moves (measured: (236, 34, 23); misread,
    /// it was (255, 20, 9)).
    #[test]
    fn a_converted_jpeg_keeps_its_colours_in_webp() {
        let dir = tempfile::tempdir().unwrap();
        let p3 = srgb_filter(&profile(KNOWN[1].1), false).unwrap().unwrap();
        let run = |args: &[&str]| crate::ffmpeg::run_for_test(dir.path(), args);
        let color = "color=c=0xDC3C28:s=64x64";
        run(&[
            "-f",
            "lavfi",
            "-i",
            color,
            "-frames:v",
            "1",
            "-pix_fmt",
            "yuvj420p",
            "p3.jpg",
        ]);
        run(&["-i", "p3.jpg", "-vf", &p3, "-frames:v", "1", "out.webp"]);
        let pixel = run(&[
            "-i",
            "out.webp",
            "-vf",
            "format=rgb24",
            "-f",
            "rawvideo",
            "-",
        ]);
        let want = [239u8, 35, 17];
        assert!(
            pixel[..3]
                .iter()
                .zip(want)
                .all(|(got, want)| got.abs_diff(want) <= 7),
            "{:?}",
            &pixel[..3]
        );
    }
}
