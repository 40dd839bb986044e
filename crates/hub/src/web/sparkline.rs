//! Sparklines: a series of numbers as a small inline SVG, drawn by us (no chart library, no
//! script). The SVG carries a text alternative for screen readers.

use std::fmt::Write as _;

/// Width of the drawing in SVG units (it scales with CSS).
pub const WIDTH: f64 = 240.0;
/// Height of the drawing in SVG units.
pub const HEIGHT: f64 = 48.0;

/// An SVG polyline of `values` (oldest first) scaled to `0..=max`; `None` with fewer than two
/// points. `label` names the series in the accessible description, `unit` follows numbers.
#[must_use]
pub fn render(values: &[f64], max: f64, label: &str, unit: &str) -> Option<String> {
    let span = format!("the last {} heartbeats", values.len());
    render_over(values, max, label, unit, &span)
}

/// [`render`] with the span the points cover named in the text alternative (`the last 24
/// hours`).
#[must_use]
pub fn render_over(
    values: &[f64],
    max: f64,
    label: &str,
    unit: &str,
    span: &str,
) -> Option<String> {
    let values: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if values.len() < 2 || !(max.is_finite() && max > 0.0) {
        return None;
    }
    let step = WIDTH / (values.len() - 1) as f64;
    let y = |v: f64| HEIGHT - 2.0 - (v.clamp(0.0, max) / max) * (HEIGHT - 4.0);
    let mut points = String::new();
    for (i, v) in values.iter().enumerate() {
        let _ = write!(points, "{:.1},{:.1} ", i as f64 * step, y(*v));
    }
    let latest = values[values.len() - 1];
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let description = format!(
        "{label}: latest {latest:.1}{unit}, lowest {low:.1}{unit}, highest {high:.1}{unit} over {span}"
    );
    let area = format!("0,{HEIGHT:.1} {}{WIDTH:.1},{HEIGHT:.1}", points);
    Some(format!(
        concat!(
            r#"<svg class="sparkline" viewBox="0 0 {w} {h}" preserveAspectRatio="none" role="img" aria-label="{d}">"#,
            r#"<title>{d}</title>"#,
            r#"<polygon class="sparkline-area" points="{area}"/>"#,
            r#"<polyline class="sparkline-line" points="{points}"/>"#,
            r#"<circle class="sparkline-dot" cx="{cx:.1}" cy="{cy:.1}" r="2.5"/>"#,
            "</svg>"
        ),
        w = WIDTH,
        h = HEIGHT,
        d = escape(&description),
        area = area,
        points = points.trim_end(),
        cx = WIDTH,
        cy = y(latest),
    ))
}

/// Escapes text for an XML attribute.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_span_the_width_and_scale_to_max() {
        let svg = render(&[0.0, 50.0, 100.0], 100.0, "CPU", "%").unwrap_or_default();
        // x: 0, 120, 240; y: bottom (46), middle (24), top (2).
        assert!(
            svg.contains(r#"points="0.0,46.0 120.0,24.0 240.0,2.0""#),
            "{svg}"
        );
        assert!(svg.contains("latest 100.0%"), "{svg}");
        assert!(svg.contains("lowest 0.0%"), "{svg}");
        assert!(svg.contains(r#"role="img""#));
    }

    #[test]
    fn out_of_range_values_are_clamped_and_bad_input_draws_nothing() {
        let svg = render(&[-5.0, 500.0], 100.0, "CPU", "%").unwrap_or_default();
        assert!(svg.contains(r#"points="0.0,46.0 240.0,2.0""#), "{svg}");
        assert_eq!(render(&[1.0], 100.0, "CPU", "%"), None);
        assert_eq!(render(&[1.0, 2.0], 0.0, "CPU", "%"), None);
        assert_eq!(render(&[f64::NAN, 1.0], 10.0, "CPU", "%"), None);
    }

    #[test]
    fn labels_are_escaped() {
        let svg = render(&[1.0, 2.0], 2.0, "<b>\"x\"", "").unwrap_or_default();
        assert!(svg.contains("&lt;b&gt;&quot;x&quot;"), "{svg}");
        assert!(!svg.contains("<b>"));
    }
}
