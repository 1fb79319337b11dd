//! A QR code drawn with Unicode half blocks, for a terminal: `jitctl enroll` over ssh, and the
//! approval link at a console login (jitd).

use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

/// The QR code of `data` for a terminal, or `None` if it does not fit in a QR code.
pub fn render(data: &str) -> Option<String> {
    let code = QrCode::new(data.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_a_block_of_lines() {
        let q =
            super::render("otpauth://totp/jit:alice?secret=JBSWY3DPEHPK3PXP&issuer=jit").unwrap();
        assert!(q.lines().count() > 10);
        assert!(q.contains('█') || q.contains('▀') || q.contains('▄'));
    }
}
