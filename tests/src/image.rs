//! Still-image test media and what a user checks of an image a job made: images drawn with
//! ffmpeg's lavfi sources, then given EXIF, XMP and ICC profiles built here byte by byte (JPEG
//! APP1/APP2 segments, PNG `eXIf`/`iTXt`/`iCCP` chunks); the same metadata read back from JPEG,
//! PNG and WebP outputs; whether a JPEG is progressive; pixels as RGBA; and the Display P3 to
//! sRGB conversion a correct converter makes.
//!
//! Every reader here is written apart from the host's own (`host/src/media/image_meta.rs`), so a
//! test that reads an output with them does not trust the code under test. The zlib inflater is
//! here because this crate has no compression dependency; its unit test decodes what ffmpeg's
//! PNG encoder compressed.
//!
//! Not here: running jobs ([`crate::client`], [`crate::video`]), SSIM ([`crate::video::ssim`]).

use std::path::{Path, PathBuf};

use crate::media::{ffmpeg, run};

// ---------------------------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------------------------

/// One frame of the lavfi graph `graph` written to `dest` with the output options `args`
/// (the format comes from `dest`'s extension unless `args` say otherwise).
pub fn lavfi_image(graph: &str, args: &[&str], dest: &Path) -> PathBuf {
    run(
        ffmpeg()
            .args(["-f", "lavfi", "-i", graph, "-frames:v", "1"])
            .args(args)
            .arg(dest),
        &format!("ffmpeg image {}", dest.display()),
    );
    dest.to_path_buf()
}

/// A photo-like picture of `width`x`height`: the Mandelbrot set's smooth gradients and fine
/// filigree with a light sensor-like grain, as a high-quality JPEG (q 2, 4:2:0).
pub fn photo(width: u32, height: u32, dest: &Path) -> PathBuf {
    lavfi_image(
        &format!(
            "mandelbrot=size={width}x{height}:end_pts=1,noise=alls=4:all_seed=11,format=yuvj420p"
        ),
        &["-q:v", "2"],
        dest,
    )
}

/// Two flat colours side by side (`left`, `right` as ffmpeg colours, `0xRRGGBB` or names), each
/// half of `width`x`height`, in the format of `dest`'s extension, RGB where it can be.
pub fn halves(width: u32, height: u32, left: &str, right: &str, dest: &Path) -> PathBuf {
    let half = width / 2;
    lavfi_image(
        &format!(
            "color=c={left}:s={half}x{height}[l];color=c={right}:s={}x{height}[r];\
             [l][r]hstack,format=rgb24[out0]",
            width - half
        ),
        &[],
        dest,
    )
}

/// The two markers of [`marked`]: a red block in the stored picture's top-left corner and a blue
/// one in its top-right corner, each `MARK_W`x`MARK_H`.
pub const MARK_W: u32 = 64;
pub const MARK_H: u32 = 48;

/// A grey `width`x`height` picture (landscape) with a red block in its top-left corner and a
/// blue one in its top-right corner: any turn or flip moves them somewhere else.
pub fn marked(width: u32, height: u32, args: &[&str], dest: &Path) -> PathBuf {
    lavfi_image(
        &format!(
            "color=c=gray:s={width}x{height},format=rgb24,\
             drawbox=x=0:y=0:w={MARK_W}:h={MARK_H}:color=red:t=fill,\
             drawbox=x={}:y=0:w={MARK_W}:h={MARK_H}:color=blue:t=fill",
            width - MARK_W
        ),
        args,
        dest,
    )
}

/// Where the stored picture's point (`x`, `y`) of a `width`x`height` image is shown by a viewer
/// applying EXIF orientation `orientation` (1 to 8), in the displayed picture's coordinates
/// (continuous: a pixel's centre is `x + 0.5`).
pub fn displayed_at(orientation: u16, width: f64, height: f64, x: f64, y: f64) -> (f64, f64) {
    let (w, h) = (width, height);
    match orientation {
        2 => (w - x, y),
        3 => (w - x, h - y),
        4 => (x, h - y),
        5 => (y, x),
        6 => (h - y, x),
        7 => (h - y, w - x),
        8 => (y, w - x),
        _ => (x, y),
    }
}

// ---------------------------------------------------------------------------------------------
// Metadata as containers carry it
// ---------------------------------------------------------------------------------------------

/// The metadata of one image, each part unwrapped from its container: EXIF as TIFF bytes, XMP
/// as its packet, the ICC profile as the profile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    pub exif: Option<Vec<u8>>,
    pub xmp: Option<Vec<u8>>,
    pub icc: Option<Vec<u8>>,
}

/// The EXIF fields a test puts in: IFD0 `Make` (0x010F), `Orientation` (0x0112), `Artist`
/// (0x013B).
#[derive(Clone, Debug, Default)]
pub struct Exif<'a> {
    pub make: Option<&'a str>,
    pub orientation: Option<u16>,
    pub artist: Option<&'a str>,
    /// Motorola (`MM`) byte order instead of Intel (`II`).
    pub big_endian: bool,
}

pub const TAG_MAKE: u16 = 0x010f;
pub const TAG_ORIENTATION: u16 = 0x0112;
pub const TAG_ARTIST: u16 = 0x013b;

impl Exif<'_> {
    /// TIFF bytes: the header, IFD0 with the fields set (in tag order), no next IFD, then the
    /// ASCII values too long to sit in their entries.
    pub fn tiff(&self) -> Vec<u8> {
        let be = self.big_endian;
        let u16b = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        // (tag, type, count, value bytes)
        let mut fields: Vec<(u16, u16, u32, Vec<u8>)> = Vec::new();
        let ascii = |s: &str| {
            let mut v = s.as_bytes().to_vec();
            v.push(0);
            v
        };
        if let Some(make) = self.make {
            let v = ascii(make);
            fields.push((TAG_MAKE, 2, v.len() as u32, v));
        }
        if let Some(o) = self.orientation {
            fields.push((TAG_ORIENTATION, 3, 1, u16b(o).to_vec()));
        }
        if let Some(artist) = self.artist {
            let v = ascii(artist);
            fields.push((TAG_ARTIST, 2, v.len() as u32, v));
        }
        let mut t = if be {
            b"MM\0*".to_vec()
        } else {
            b"II*\0".to_vec()
        };
        t.extend_from_slice(&u32b(8));
        t.extend_from_slice(&u16b(fields.len() as u16));
        let mut data_at = 8 + 2 + 12 * fields.len() + 4;
        let mut data = Vec::new();
        for (tag, kind, count, value) in &fields {
            t.extend_from_slice(&u16b(*tag));
            t.extend_from_slice(&u16b(*kind));
            t.extend_from_slice(&u32b(*count));
            if value.len() <= 4 {
                let mut inline = value.clone();
                inline.resize(4, 0);
                t.extend_from_slice(&inline);
            } else {
                t.extend_from_slice(&u32b(data_at as u32));
                data.extend_from_slice(value);
                if value.len() % 2 == 1 {
                    data.push(0);
                }
                data_at += value.len().div_ceil(2) * 2;
            }
        }
        t.extend_from_slice(&u32b(0));
        t.extend_from_slice(&data);
        t
    }
}

/// One IFD0 entry of TIFF bytes: its type, count and the bytes of its value.
fn exif_entry(tiff: &[u8], tag: u16) -> Option<(u16, u32, Vec<u8>, bool)> {
    let be = match tiff.get(..4)? {
        b"MM\0*" => true,
        b"II*\0" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at + 2)?.try_into().ok()?;
        Some(if be {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at + 4)?.try_into().ok()?;
        Some(if be {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let ifd = u32_at(4)? as usize;
    for i in 0..usize::from(u16_at(ifd)?) {
        let entry = ifd + 2 + 12 * i;
        if u16_at(entry)? != tag {
            continue;
        }
        let kind = u16_at(entry + 2)?;
        let count = u32_at(entry + 4)?;
        let unit = match kind {
            3 => 2,
            4 => 4,
            _ => 1,
        };
        let len = unit * count as usize;
        let at = if len <= 4 {
            entry + 8
        } else {
            u32_at(entry + 8)? as usize
        };
        return Some((kind, count, tiff.get(at..at + len)?.to_vec(), be));
    }
    None
}

/// IFD0's orientation (a SHORT), when present.
pub fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    match exif_entry(tiff, TAG_ORIENTATION)? {
        (3, 1, v, be) => {
            let b = [v[0], v[1]];
            Some(if be {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            })
        }
        _ => None,
    }
}

/// An ASCII field of IFD0 (`Make`, `Artist`), without its NUL.
pub fn exif_ascii(tiff: &[u8], tag: u16) -> Option<String> {
    match exif_entry(tiff, tag)? {
        (2, _, v, _) => {
            let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
            Some(String::from_utf8_lossy(&v[..end]).into_owned())
        }
        _ => None,
    }
}

/// An XMP packet whose description carries `marker` (`mediahost:test="<marker>"`).
pub fn xmp_packet(marker: &str) -> Vec<u8> {
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\
         <x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF \
         xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description \
         rdf:about=\"\" xmlns:mediahost=\"https://mediahost.dev/ns/test/\" \
         mediahost:test=\"{marker}\"/></rdf:RDF></x:xmpmeta><?xpacket end=\"w\"?>"
    )
    .into_bytes()
}

/// sRGB's colorants (rXYZ, gXYZ, bXYZ), adapted to D50 as ICC profiles state them.
pub const SRGB_COLORANTS: [[f64; 3]; 3] = [
    [0.4361, 0.2225, 0.0139],
    [0.3851, 0.7169, 0.0971],
    [0.1431, 0.0606, 0.7141],
];

/// Display P3's colorants, D50-adapted.
pub const DISPLAY_P3_COLORANTS: [[f64; 3]; 3] = [
    [0.5151, 0.2412, -0.0011],
    [0.2920, 0.6922, 0.0419],
    [0.1571, 0.0666, 0.7841],
];

/// Adobe RGB (1998)'s colorants, D50-adapted: primaries ffmpeg 5.1 cannot convert from.
pub const ADOBE_RGB_COLORANTS: [[f64; 3]; 3] = [
    [0.6097, 0.3111, 0.0195],
    [0.2053, 0.6257, 0.0609],
    [0.1492, 0.0632, 0.7446],
];

/// A v4 RGB display (matrix/TRC) profile: header, `desc` (mluc), `wtpt` (D50), the three
/// colorants and the sRGB transfer curve (`para` type 3) shared by `rTRC`, `gTRC` and `bTRC`.
pub fn icc_profile(description: &str, colorants: [[f64; 3]; 3]) -> Vec<u8> {
    let s15 = |v: f64| ((v * 65536.0).round() as i32).to_be_bytes();
    let xyz = |c: [f64; 3]| {
        let mut d = b"XYZ \0\0\0\0".to_vec();
        for v in c {
            d.extend_from_slice(&s15(v));
        }
        d
    };
    let mut desc = b"mluc\0\0\0\0".to_vec();
    let text: Vec<u8> = description
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    desc.extend_from_slice(&1u32.to_be_bytes());
    desc.extend_from_slice(&12u32.to_be_bytes());
    desc.extend_from_slice(b"enUS");
    desc.extend_from_slice(&(text.len() as u32).to_be_bytes());
    desc.extend_from_slice(&28u32.to_be_bytes());
    desc.extend_from_slice(&text);
    let mut trc = b"para\0\0\0\0".to_vec();
    trc.extend_from_slice(&3u16.to_be_bytes());
    trc.extend_from_slice(&[0, 0]);
    for v in [2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045] {
        trc.extend_from_slice(&s15(v));
    }
    let d50 = [0.9642, 1.0, 0.8249];
    // Each tag's data once; the TRCs share one.
    let data: [(&[u8; 4], Vec<u8>); 6] = [
        (b"desc", desc),
        (b"wtpt", xyz(d50)),
        (b"rXYZ", xyz(colorants[0])),
        (b"gXYZ", xyz(colorants[1])),
        (b"bXYZ", xyz(colorants[2])),
        (b"rTRC", trc),
    ];
    let tags = data.len() + 2;
    let mut at = 128 + 4 + 12 * tags;
    let mut table = (tags as u32).to_be_bytes().to_vec();
    let mut body = Vec::new();
    let mut trc_entry = (0, 0);
    for (sig, bytes) in &data {
        table.extend_from_slice(*sig);
        table.extend_from_slice(&(at as u32).to_be_bytes());
        table.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        if *sig == b"rTRC" {
            trc_entry = (at, bytes.len());
        }
        body.extend_from_slice(bytes);
        while body.len() % 4 != 0 {
            body.push(0);
        }
        at = 128 + 4 + 12 * tags + body.len();
    }
    for sig in [b"gTRC", b"bTRC"] {
        table.extend_from_slice(sig);
        table.extend_from_slice(&(trc_entry.0 as u32).to_be_bytes());
        table.extend_from_slice(&(trc_entry.1 as u32).to_be_bytes());
    }
    let mut header = vec![0u8; 128];
    header[8..12].copy_from_slice(&[4, 0x30, 0, 0]);
    header[12..16].copy_from_slice(b"mntr");
    header[16..20].copy_from_slice(b"RGB ");
    header[20..24].copy_from_slice(b"XYZ ");
    header[24..36].copy_from_slice(&[0x07, 0xea, 0, 11, 0, 24, 0, 0, 0, 0, 0, 0]);
    header[36..40].copy_from_slice(b"acsp");
    for (i, v) in d50.iter().enumerate() {
        header[68 + 4 * i..72 + 4 * i].copy_from_slice(&s15(*v));
    }
    let mut profile = [header, table, body].concat();
    let len = profile.len() as u32;
    profile[..4].copy_from_slice(&len.to_be_bytes());
    profile
}

/// The colorants an ICC profile states (rXYZ, gXYZ, bXYZ), when it has them.
pub fn icc_colorants(icc: &[u8]) -> Option<[[f64; 3]; 3]> {
    let be32 = |at: usize| Some(u32::from_be_bytes(icc.get(at..at + 4)?.try_into().ok()?));
    let mut found = [[f64::NAN; 3]; 3];
    for i in 0..be32(128)? as usize {
        let entry = 132 + 12 * i;
        let slot = match icc.get(entry..entry + 4)? {
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

const JPEG_EXIF: &[u8] = b"Exif\0\0";
const JPEG_XMP: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const JPEG_ICC: &[u8] = b"ICC_PROFILE\0";
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
const PNG_XMP_KEYWORD: &[u8] = b"XML:com.adobe.xmp";

/// A JPEG's marker segments before its first scan: (marker, payload), in order.
pub fn jpeg_segments(jpeg: &[u8]) -> Result<Vec<(u8, &[u8])>, String> {
    if !jpeg.starts_with(&[0xff, 0xd8]) {
        return Err("no JPEG SOI".into());
    }
    let mut at = 2;
    let mut segments = Vec::new();
    loop {
        let (Some(0xff), Some(&marker)) = (jpeg.get(at), jpeg.get(at + 1)) else {
            return Err(format!("no marker at byte {at}"));
        };
        if marker == 0xff {
            at += 1; // fill byte
            continue;
        }
        let len = jpeg
            .get(at + 2..at + 4)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or("cut short")?;
        let payload = jpeg
            .get(at + 4..at + 2 + len)
            .filter(|_| len >= 2)
            .ok_or_else(|| format!("segment 0x{marker:02x} at {at} runs past the end"))?;
        segments.push((marker, payload));
        if marker == 0xda {
            return Ok(segments);
        }
        at += 2 + len;
    }
}

/// The JPEG's frame marker (SOF0 `0xc0` baseline, SOF1 `0xc1`, SOF2 `0xc2` progressive, ...),
/// as found before its first scan.
pub fn jpeg_frame_marker(jpeg: &[u8]) -> Result<u8, String> {
    jpeg_segments(jpeg)?
        .iter()
        .map(|(m, _)| *m)
        .find(|m| (0xc0..=0xcf).contains(m) && !matches!(m, 0xc4 | 0xc8 | 0xcc))
        .ok_or_else(|| "no SOF marker before the scan".into())
}

fn segment(marker: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = 2 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut s = vec![0xff, marker];
    s.extend_from_slice(&u16::try_from(len).expect("segment fits").to_be_bytes());
    for p in parts {
        s.extend_from_slice(p);
    }
    s
}

/// `jpeg` with `meta` put in after its SOI (and JFIF APP0): APP1 Exif, APP1 XMP, APP2
/// ICC_PROFILE (one chunk, so profiles up to 64 KiB).
pub fn jpeg_with(jpeg: &[u8], meta: &Metadata) -> Vec<u8> {
    let mut at = 2;
    if jpeg.get(2..4) == Some(&[0xff, 0xe0]) {
        at += 2 + usize::from(u16::from_be_bytes([jpeg[4], jpeg[5]]));
    }
    let mut out = jpeg[..at].to_vec();
    if let Some(exif) = &meta.exif {
        out.extend(segment(0xe1, &[JPEG_EXIF, exif]));
    }
    if let Some(xmp) = &meta.xmp {
        out.extend(segment(0xe1, &[JPEG_XMP, xmp]));
    }
    if let Some(icc) = &meta.icc {
        out.extend(segment(0xe2, &[JPEG_ICC, &[1, 1], icc]));
    }
    out.extend_from_slice(&jpeg[at..]);
    out
}

/// A PNG or RIFF chunk: its four-byte type and its data.
pub type Chunk<'a> = (&'a [u8], &'a [u8]);

/// A PNG's chunks: (type, data), CRCs checked.
pub fn png_chunks(png: &[u8]) -> Result<Vec<Chunk<'_>>, String> {
    if !png.starts_with(PNG_SIGNATURE) {
        return Err("no PNG signature".into());
    }
    let mut at = PNG_SIGNATURE.len();
    let mut chunks = Vec::new();
    while at < png.len() {
        let len = png
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or("cut short")?;
        let kind = png.get(at + 4..at + 8).ok_or("cut short")?;
        let data = png
            .get(at + 8..at + 8 + len)
            .ok_or_else(|| format!("chunk {} runs past the end", String::from_utf8_lossy(kind)))?;
        let stored = png.get(at + 8 + len..at + 12 + len).ok_or("no CRC")?;
        let crc = crc32(&[kind, data].concat());
        if stored != crc.to_be_bytes() {
            return Err(format!(
                "chunk {}'s CRC is wrong",
                String::from_utf8_lossy(kind)
            ));
        }
        chunks.push((kind, data));
        at += 12 + len;
    }
    Ok(chunks)
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[kind, data].concat()).to_be_bytes());
}

/// `png` with `meta` put in after IHDR: `iCCP` (zlib), `eXIf`, `iTXt` `XML:com.adobe.xmp`.
pub fn png_with(png: &[u8], meta: &Metadata) -> Vec<u8> {
    let mut out = PNG_SIGNATURE.to_vec();
    for (kind, data) in png_chunks(png).expect("a well-formed PNG") {
        png_chunk(&mut out, kind, data);
        if kind != b"IHDR" {
            continue;
        }
        if let Some(icc) = &meta.icc {
            let data = [&b"test profile\0\0"[..], &zlib_stored(icc)].concat();
            png_chunk(&mut out, b"iCCP", &data);
        }
        if let Some(exif) = &meta.exif {
            png_chunk(&mut out, b"eXIf", exif);
        }
        if let Some(xmp) = &meta.xmp {
            // keyword, NUL, uncompressed, method 0, no language, no translated keyword.
            let data = [PNG_XMP_KEYWORD, b"\0\0\0\0\0", xmp].concat();
            png_chunk(&mut out, b"iTXt", &data);
        }
    }
    out
}

/// A WebP's chunks after the RIFF header: (FourCC, data).
pub fn webp_chunks(webp: &[u8]) -> Result<Vec<Chunk<'_>>, String> {
    if !(webp.starts_with(b"RIFF") && webp.get(8..12) == Some(b"WEBP")) {
        return Err("no RIFF WEBP header".into());
    }
    let riff_len = u32::from_le_bytes(webp[4..8].try_into().unwrap()) as usize;
    if riff_len + 8 != webp.len() {
        return Err(format!(
            "the RIFF size says {} bytes, the file has {}",
            riff_len + 8,
            webp.len()
        ));
    }
    let mut at = 12;
    let mut chunks = Vec::new();
    while at + 8 <= webp.len() {
        let kind = &webp[at..at + 4];
        let len = u32::from_le_bytes(webp[at + 4..at + 8].try_into().unwrap()) as usize;
        let data = webp
            .get(at + 8..at + 8 + len)
            .ok_or_else(|| format!("chunk {} runs past the end", String::from_utf8_lossy(kind)))?;
        chunks.push((kind, data));
        at += 8 + len + (len & 1);
    }
    Ok(chunks)
}

/// The EXIF, XMP and ICC profile of a JPEG, PNG or WebP file, by its signature.
pub fn read_metadata(image: &[u8]) -> Result<Metadata, String> {
    let mut meta = Metadata::default();
    if image.starts_with(&[0xff, 0xd8]) {
        let mut icc: Vec<(u8, Vec<u8>)> = Vec::new();
        for (marker, p) in jpeg_segments(image)? {
            match marker {
                0xe1 if p.starts_with(JPEG_EXIF) => meta.exif = Some(p[JPEG_EXIF.len()..].to_vec()),
                0xe1 if p.starts_with(JPEG_XMP) => meta.xmp = Some(p[JPEG_XMP.len()..].to_vec()),
                0xe2 if p.starts_with(JPEG_ICC) && p.len() >= 14 => {
                    icc.push((p[12], p[14..].to_vec()))
                }
                _ => {}
            }
        }
        if !icc.is_empty() {
            icc.sort_by_key(|(seq, _)| *seq);
            meta.icc = Some(icc.into_iter().flat_map(|(_, d)| d).collect());
        }
    } else if image.starts_with(PNG_SIGNATURE) {
        for (kind, data) in png_chunks(image)? {
            match kind {
                b"eXIf" => meta.exif = Some(data.to_vec()),
                b"iCCP" => {
                    let name_end = data.iter().position(|b| *b == 0).ok_or("iCCP: no name")?;
                    if data.get(name_end + 1) != Some(&0) {
                        return Err("iCCP: compression method is not zlib".into());
                    }
                    meta.icc = Some(zlib_decode(&data[name_end + 2..])?);
                }
                b"iTXt" if data.starts_with(PNG_XMP_KEYWORD) => {
                    let rest = &data[PNG_XMP_KEYWORD.len()..];
                    // NUL, compression flag, method, language NUL, translated keyword NUL.
                    if rest.first() != Some(&0) {
                        continue;
                    }
                    let compressed = rest.get(1) == Some(&1);
                    let mut nuls = rest
                        .iter()
                        .enumerate()
                        .skip(3)
                        .filter(|(_, b)| **b == 0)
                        .map(|(i, _)| i);
                    let (Some(_), Some(end)) = (nuls.next(), nuls.next()) else {
                        return Err("iTXt: cut short".into());
                    };
                    let text = &rest[end + 1..];
                    meta.xmp = Some(if compressed {
                        zlib_decode(text)?
                    } else {
                        text.to_vec()
                    });
                }
                _ => {}
            }
        }
    } else if image.starts_with(b"RIFF") {
        for (kind, data) in webp_chunks(image)? {
            match kind {
                b"EXIF" => meta.exif = Some(data.strip_prefix(JPEG_EXIF).unwrap_or(data).to_vec()),
                b"XMP " => meta.xmp = Some(data.to_vec()),
                b"ICCP" => meta.icc = Some(data.to_vec()),
                _ => {}
            }
        }
    } else {
        return Err("neither JPEG, PNG nor WebP".into());
    }
    Ok(meta)
}

/// The VP8X flags of a WebP (ICC 0x20, alpha 0x10, EXIF 0x08, XMP 0x04), if it is extended.
pub fn webp_flags(webp: &[u8]) -> Option<u8> {
    let chunks = webp_chunks(webp).ok()?;
    match chunks.first() {
        Some((b"VP8X", d)) => d.first().copied(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Checksums and zlib
// ---------------------------------------------------------------------------------------------

/// CRC-32 (IEEE, as PNG uses it).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// `data` as a zlib stream of stored (uncompressed) deflate blocks: valid zlib that needs no
/// compressor.
pub fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut blocks = data.chunks(65535).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

/// Decodes a zlib stream (RFC 1950/1951: stored, fixed and dynamic Huffman blocks) and checks
/// its Adler-32.
pub fn zlib_decode(stream: &[u8]) -> Result<Vec<u8>, String> {
    let (&cmf, &flg) = (
        stream.first().ok_or("empty")?,
        stream.get(1).ok_or("cut short")?,
    );
    if cmf & 0x0f != 8 || (u16::from(cmf) * 256 + u16::from(flg)) % 31 != 0 || flg & 0x20 != 0 {
        return Err(format!("not a zlib header: {cmf:02x} {flg:02x}"));
    }
    let mut bits = Bits {
        data: stream,
        at: 2,
        buf: 0,
        count: 0,
    };
    let mut out = Vec::new();
    loop {
        let last = bits.take(1)? == 1;
        match bits.take(2)? {
            0 => {
                bits.buf = 0;
                bits.count = 0;
                let head = stream.get(bits.at..bits.at + 4).ok_or("cut short")?;
                let len = u16::from_le_bytes([head[0], head[1]]);
                if len != !u16::from_le_bytes([head[2], head[3]]) {
                    return Err("stored block length check failed".into());
                }
                let start = bits.at + 4;
                let block = stream
                    .get(start..start + usize::from(len))
                    .ok_or("cut short")?;
                out.extend_from_slice(block);
                bits.at = start + usize::from(len);
            }
            1 => {
                let mut lengths = [0u8; 288];
                lengths[..144].fill(8);
                lengths[144..256].fill(9);
                lengths[256..280].fill(7);
                lengths[280..].fill(8);
                let literals = Huffman::new(&lengths);
                let distances = Huffman::new(&[5; 30]);
                inflate_block(&mut bits, &mut out, &literals, &distances)?;
            }
            2 => {
                let (literals, distances) = dynamic_tables(&mut bits)?;
                inflate_block(&mut bits, &mut out, &literals, &distances)?;
            }
            _ => return Err("reserved block type".into()),
        }
        if last {
            break;
        }
    }
    // The Adler-32 follows on the next byte boundary.
    let at = bits.at - (bits.count / 8) as usize;
    let sum = stream.get(at..at + 4).ok_or("no Adler-32")?;
    if sum != adler32(&out).to_be_bytes() {
        return Err("Adler-32 mismatch".into());
    }
    Ok(out)
}

struct Bits<'a> {
    data: &'a [u8],
    at: usize,
    buf: u64,
    count: u32,
}

impl Bits<'_> {
    fn take(&mut self, n: u32) -> Result<u32, String> {
        while self.count < n {
            let byte = *self.data.get(self.at).ok_or("deflate data cut short")?;
            self.buf |= u64::from(byte) << self.count;
            self.count += 8;
            self.at += 1;
        }
        let value = (self.buf & ((1u64 << n) - 1)) as u32;
        self.buf >>= n;
        self.count -= n;
        Ok(value)
    }
}

/// A canonical Huffman code: how many codes of each length, and the symbols in code order.
struct Huffman {
    counts: [u16; 16],
    symbols: Vec<u16>,
}

impl Huffman {
    fn new(lengths: &[u8]) -> Huffman {
        let mut counts = [0u16; 16];
        for &l in lengths {
            counts[usize::from(l)] += 1;
        }
        counts[0] = 0;
        let mut offsets = [0u16; 16];
        for l in 1..15 {
            offsets[l + 1] = offsets[l] + counts[l];
        }
        let mut symbols = vec![0u16; lengths.len()];
        for (symbol, &l) in lengths.iter().enumerate() {
            if l != 0 {
                symbols[usize::from(offsets[usize::from(l)])] = symbol as u16;
                offsets[usize::from(l)] += 1;
            }
        }
        Huffman { counts, symbols }
    }

    fn decode(&self, bits: &mut Bits) -> Result<u16, String> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= bits.take(1)? as i32;
            let count = i32::from(self.counts[len]);
            if code - count < first {
                return Ok(self.symbols[(index + code - first) as usize]);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err("invalid Huffman code".into())
    }
}

fn dynamic_tables(bits: &mut Bits) -> Result<(Huffman, Huffman), String> {
    const ORDER: [usize; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    let literals = bits.take(5)? as usize + 257;
    let distances = bits.take(5)? as usize + 1;
    let code_lengths = bits.take(4)? as usize + 4;
    let mut lengths = [0u8; 19];
    for &i in &ORDER[..code_lengths] {
        lengths[i] = bits.take(3)? as u8;
    }
    let code = Huffman::new(&lengths);
    let mut all = Vec::with_capacity(literals + distances);
    while all.len() < literals + distances {
        let symbol = code.decode(bits)?;
        let (value, repeat) = match symbol {
            0..=15 => (symbol as u8, 1),
            16 => (
                *all.last().ok_or("repeat with no previous length")?,
                3 + bits.take(2)?,
            ),
            17 => (0, 3 + bits.take(3)?),
            _ => (0, 11 + bits.take(7)?),
        };
        all.extend(std::iter::repeat_n(value, repeat as usize));
    }
    if all.len() != literals + distances {
        return Err("code lengths overrun".into());
    }
    Ok((
        Huffman::new(&all[..literals]),
        Huffman::new(&all[literals..]),
    ))
}

fn inflate_block(
    bits: &mut Bits,
    out: &mut Vec<u8>,
    literals: &Huffman,
    distances: &Huffman,
) -> Result<(), String> {
    const LEN_BASE: [u16; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
        131, 163, 195, 227, 258,
    ];
    const LEN_EXTRA: [u8; 29] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ];
    const DIST_BASE: [u16; 30] = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
        2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
    ];
    const DIST_EXTRA: [u8; 30] = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
        13, 13,
    ];
    loop {
        let symbol = literals.decode(bits)?;
        match symbol {
            0..=255 => out.push(symbol as u8),
            256 => return Ok(()),
            _ => {
                let i = usize::from(symbol - 257);
                let len = usize::from(*LEN_BASE.get(i).ok_or("bad length symbol")?)
                    + bits.take(u32::from(LEN_EXTRA[i]))? as usize;
                let d = usize::from(distances.decode(bits)?);
                let dist = usize::from(*DIST_BASE.get(d).ok_or("bad distance symbol")?)
                    + bits.take(u32::from(DIST_EXTRA[d]))? as usize;
                if dist > out.len() {
                    return Err("distance before the start".into());
                }
                let from = out.len() - dist;
                for k in 0..len {
                    out.push(out[from + k]);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pixels and colour
// ---------------------------------------------------------------------------------------------

/// An image decoded by ffmpeg to 8-bit RGBA (opaque pictures have alpha 255). ffmpeg applies no
/// ICC profile, so these are the values as stored.
#[derive(Clone, Debug)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

impl Picture {
    pub fn decode(image: &Path) -> Picture {
        let probe = crate::video::probe(image);
        let stream = crate::video::stream(&probe, "video").expect("a picture");
        let (width, height) = (
            stream["width"].as_u64().unwrap() as u32,
            stream["height"].as_u64().unwrap() as u32,
        );
        let output = ffmpeg()
            .args(["-v", "error", "-noautorotate", "-i"])
            .arg(image)
            .args(["-frames:v", "1", "-pix_fmt", "rgba", "-f", "rawvideo", "-"])
            .output()
            .expect("run ffmpeg");
        assert!(
            output.status.success(),
            "decode {}: {}",
            image.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            output.stdout.len(),
            (width * height * 4) as usize,
            "{}",
            image.display()
        );
        Picture {
            width,
            height,
            rgba: output.stdout,
        }
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        let at = ((y * self.width + x) * 4) as usize;
        self.rgba[at..at + 4].try_into().unwrap()
    }

    /// The mean RGBA of the `w`x`h` region at (`x`, `y`), clipped to the picture.
    pub fn mean(&self, x: u32, y: u32, w: u32, h: u32) -> [f64; 4] {
        let (x1, y1) = ((x + w).min(self.width), (y + h).min(self.height));
        let mut sum = [0f64; 4];
        let mut n = 0f64;
        for yy in y..y1 {
            for xx in x..x1 {
                for (s, v) in sum.iter_mut().zip(self.pixel(xx, yy)) {
                    *s += f64::from(v);
                }
                n += 1.0;
            }
        }
        sum.map(|s| s / n.max(1.0))
    }

    /// The mean RGBA of a `size`-pixel square centred on (`cx`, `cy`) (continuous coordinates).
    pub fn mean_around(&self, cx: f64, cy: f64, size: u32) -> [f64; 4] {
        let x = (cx - f64::from(size) / 2.0).round().max(0.0) as u32;
        let y = (cy - f64::from(size) / 2.0).round().max(0.0) as u32;
        self.mean(x, y, size, size)
    }
}

/// A colour's name for messages and checks: which of red, green, blue, white, black or grey
/// an RGB mean is nearest in kind (a channel over 150 with the others under 100 is that
/// primary).
pub fn colour_name(rgb: &[f64]) -> &'static str {
    let (r, g, b) = (rgb[0], rgb[1], rgb[2]);
    let high = |v: f64| v > 150.0;
    let low = |v: f64| v < 100.0;
    match () {
        _ if high(r) && low(g) && low(b) => "red",
        _ if low(r) && high(g) && low(b) => "green",
        _ if low(r) && low(g) && high(b) => "blue",
        _ if r > 235.0 && g > 235.0 && b > 235.0 => "white",
        _ if r < 20.0 && g < 20.0 && b < 20.0 => "black",
        _ if (r - g).abs() < 20.0 && (g - b).abs() < 20.0 => "grey",
        _ => "other",
    }
}

fn srgb_to_linear(v: f64) -> f64 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(v: f64) -> f64 {
    let v = v.clamp(0.0, 1.0);
    if v <= 0.003_130_8 {
        v * 12.92
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    }
}

/// A Display P3 colour (8-bit, P3's transfer curve is sRGB's) as the same colour in sRGB
/// (8-bit, not rounded): linearised, through the D65 P3-to-sRGB matrix (derived from both
/// spaces' primaries), clipped to the sRGB gamut, encoded again.
pub fn display_p3_to_srgb(p3: [u8; 3]) -> [f64; 3] {
    const M: [[f64; 3]; 3] = [
        [1.224_940_2, -0.224_940_2, 0.0],
        [-0.042_056_9, 1.042_056_9, 0.0],
        [-0.019_637_6, -0.078_636_0, 1.098_273_6],
    ];
    let lin = p3.map(|v| srgb_to_linear(f64::from(v) / 255.0));
    let mut out = [0f64; 3];
    for (o, row) in out.iter_mut().zip(M) {
        *o = linear_to_srgb(row[0] * lin[0] + row[1] * lin[1] + row[2] * lin[2]) * 255.0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        crate::process::fixture_dir("image")
    }

    #[test]
    fn zlib_round_trips_and_reads_what_ffmpeg_compressed() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 253) as u8).collect();
        assert_eq!(zlib_decode(&zlib_stored(&data)).unwrap(), data);
        assert_eq!(zlib_decode(&zlib_stored(b"")).unwrap(), b"");
        let mut bad = zlib_stored(b"hello");
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(zlib_decode(&bad).is_err(), "a wrong Adler-32 is caught");

        // ffmpeg's PNG encoder with no row filter: the inflated IDAT is each row's filter byte
        // (0) and the raw RGB, which rawvideo gives independently.
        let d = dir();
        let png = lavfi_image(
            "testsrc2=s=96x64,format=rgb24",
            &["-pred", "none"],
            &d.path().join("t.png"),
        );
        let bytes = std::fs::read(&png).unwrap();
        let idat: Vec<u8> = png_chunks(&bytes)
            .unwrap()
            .into_iter()
            .filter(|(k, _)| *k == b"IDAT")
            .flat_map(|(_, d)| d.to_vec())
            .collect();
        let rows = zlib_decode(&idat).unwrap();
        let raw = run_raw(&png);
        assert_eq!(rows.len(), 64 * (1 + 96 * 3));
        for (y, row) in rows.chunks(1 + 96 * 3).enumerate() {
            assert_eq!(row[0], 0);
            assert_eq!(&row[1..], &raw[y * 288..(y + 1) * 288], "row {y}");
        }
    }

    fn run_raw(image: &Path) -> Vec<u8> {
        let out = ffmpeg()
            .arg("-i")
            .arg(image)
            .args(["-pix_fmt", "rgb24", "-f", "rawvideo", "-"])
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    }

    #[test]
    fn metadata_put_in_is_read_back_and_ffmpeg_still_decodes_it() {
        let meta = Metadata {
            exif: Some(
                Exif {
                    make: Some("MediahostCam"),
                    orientation: Some(6),
                    artist: Some("e2e"),
                    big_endian: false,
                }
                .tiff(),
            ),
            xmp: Some(xmp_packet("kept")),
            icc: Some(icc_profile("Display P3 (test)", DISPLAY_P3_COLORANTS)),
        };
        let d = dir();
        for name in ["a.jpg", "a.png"] {
            let plain = lavfi_image("testsrc2=s=64x48", &[], &d.path().join(name));
            let bytes = std::fs::read(&plain).unwrap();
            assert_eq!(
                read_metadata(&bytes).unwrap(),
                Metadata::default(),
                "{name}"
            );
            let tagged = if name.ends_with("jpg") {
                jpeg_with(&bytes, &meta)
            } else {
                png_with(&bytes, &meta)
            };
            assert_eq!(read_metadata(&tagged).unwrap(), meta, "{name}");
            let path = d.path().join(format!("tagged-{name}"));
            std::fs::write(&path, &tagged).unwrap();
            let picture = Picture::decode(&path);
            assert_eq!((picture.width, picture.height), (64, 48), "{name}");
        }
        let exif = meta.exif.as_deref().unwrap();
        assert_eq!(exif_orientation(exif), Some(6));
        assert_eq!(exif_ascii(exif, TAG_MAKE).as_deref(), Some("MediahostCam"));
        assert_eq!(exif_ascii(exif, TAG_ARTIST).as_deref(), Some("e2e"));
        let big = Exif {
            orientation: Some(8),
            artist: Some("a long artist name"),
            big_endian: true,
            ..Exif::default()
        }
        .tiff();
        assert_eq!(exif_orientation(&big), Some(8));
        assert_eq!(
            exif_ascii(&big, TAG_ARTIST).as_deref(),
            Some("a long artist name")
        );
        assert_eq!(exif_ascii(&big, TAG_MAKE), None);
        let p3 = icc_colorants(meta.icc.as_deref().unwrap()).unwrap();
        for (a, b) in p3
            .iter()
            .flatten()
            .zip(DISPLAY_P3_COLORANTS.iter().flatten())
        {
            assert!((a - b).abs() < 1e-4, "{p3:?}");
        }
    }

    #[test]
    fn progressive_jpegs_are_told_from_baseline_ones() {
        let d = dir();
        let baseline = lavfi_image("testsrc2=s=64x48", &[], &d.path().join("b.jpg"));
        let bytes = std::fs::read(&baseline).unwrap();
        assert_eq!(jpeg_frame_marker(&bytes), Ok(0xc0));
        let progressive = d.path().join("p.jpg");
        run(
            std::process::Command::new("jpegtran")
                .args(["-progressive", "-outfile"])
                .arg(&progressive)
                .arg(&baseline),
            "jpegtran",
        );
        assert_eq!(
            jpeg_frame_marker(&std::fs::read(&progressive).unwrap()),
            Ok(0xc2)
        );
    }

    #[test]
    fn display_p3_to_srgb_keeps_grey_and_widens_red() {
        let grey = display_p3_to_srgb([128, 128, 128]);
        assert!(grey.iter().all(|v| (v - 128.0).abs() < 0.5), "{grey:?}");
        // The host's own unit test figure for this conversion: (128, 128, 64) -> (128, 128, 53).
        let olive = display_p3_to_srgb([128, 128, 64]);
        assert!((olive[2] - 53.0).abs() < 1.0, "{olive:?}");
        let red = display_p3_to_srgb([255, 0, 0]);
        assert!(red[0] > 254.0 && red[1] < 1.0 && red[2] < 1.0, "{red:?}");
    }

    #[test]
    fn displayed_positions_follow_exif() {
        // Orientation 6 (turn clockwise): the stored top-left is shown top-right.
        assert_eq!(displayed_at(6, 320.0, 240.0, 0.0, 0.0), (240.0, 0.0));
        // 8 (turn anticlockwise): shown bottom-left; 3 (half turn): bottom-right.
        assert_eq!(displayed_at(8, 320.0, 240.0, 0.0, 0.0), (0.0, 320.0));
        assert_eq!(displayed_at(3, 320.0, 240.0, 0.0, 0.0), (320.0, 240.0));
        assert_eq!(displayed_at(1, 320.0, 240.0, 5.0, 7.0), (5.0, 7.0));
    }
}
