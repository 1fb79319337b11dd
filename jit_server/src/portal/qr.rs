//! QR codes as inline SVG (for the authenticator-app link), drawn from the qrcode crate's
//! modules: no image files, no script, nothing the Content-Security-Policy would block.

/// An SVG of `data` as a QR code, or None if it does not fit in one.
pub fn svg(data: &str, label: &str) -> Option<String> {
    let code = qrcode::QrCode::new(data.as_bytes()).ok()?;
    let width = code.width();
    let quiet = 4;
    let size = width + 2 * quiet;
    let mut path = String::new();
    for (i, c) in code.to_colors().iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (x, y) = (i % width + quiet, i / width + quiet);
            path.push_str(&format!("M{x} {y}h1v1h-1z"));
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" class=\"qr\" \
         role=\"img\" aria-label=\"{}\" shape-rendering=\"crispEdges\">\
         <rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>\
         <path d=\"{path}\" fill=\"#000\"/></svg>",
        askama_escape(label)
    ))
}

fn askama_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_a_qr_code_as_svg() {
        let s = super::svg(
            "otpauth://totp/jit:alice?secret=JBSWY3DPEHPK3PXP",
            "QR \"code\"",
        )
        .unwrap();
        assert!(
            s.starts_with("<svg") && s.contains("M4 4h1v1h-1z"),
            "finder pattern corner"
        );
        assert!(s.contains("aria-label=\"QR &quot;code&quot;\""));
        assert!(!s.contains("style"), "no inline style: the CSP forbids it");
    }
}
