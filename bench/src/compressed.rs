//! Bytes of a payload at the best compression levels.

use std::io::Write;

/// gzip at level 9.
pub fn gzip(data: &[u8]) -> usize {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).expect("writes to memory");
    encoder.finish().expect("writes to memory").len()
}

/// brotli at quality 11.
pub fn brotli(data: &[u8]) -> usize {
    let mut out = Vec::new();
    let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
    writer.write_all(data).expect("writes to memory");
    drop(writer);
    out.len()
}
