//! Just enough DER to read a certificate's `notAfter` (for renewal, `/health` and
//! `/metrics`) without an X.509 parser dependency. Any malformed input gives `None`.

/// One TLV: tag, contents, what follows.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// `notAfter` of a DER certificate, as unix seconds.
#[must_use]
pub fn not_after(cert: &[u8]) -> Option<i64> {
    let (0x30, certificate, _) = tlv(cert)? else {
        return None;
    };
    let (0x30, tbs, _) = tlv(certificate)? else {
        return None;
    };
    let (tag, _, mut rest) = tlv(tbs)?;
    if tag == 0xA0 {
        // Explicit version; the serial number follows.
        (_, _, rest) = tlv(rest)?;
    }
    let (_, _, rest) = tlv(rest)?; // signature algorithm
    let (_, _, rest) = tlv(rest)?; // issuer
    let (0x30, validity, _) = tlv(rest)? else {
        return None;
    };
    let (_, _, after) = tlv(validity)?; // notBefore
    let (tag, time, _) = tlv(after)?;
    parse_time(tag, time)
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn parse_time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match (tag, text.len()) {
        (0x17, 12) => {
            let yy: i32 = text.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (0x18, 14) => (text.get(..4)?.parse().ok()?, &text[4..]),
        _ => return None,
    };
    let num = |range: std::ops::Range<usize>| rest.get(range)?.parse::<u8>().ok();
    let month = time::Month::try_from(num(0..2)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, num(2..4)?).ok()?;
    let time = time::Time::from_hms(num(4..6)?, num(6..8)?, num(8..10)?).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_not_after_and_refuses_garbage() {
        let mut params = rcgen::CertificateParams::new(vec!["a.example".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 7, 9);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let expected = time::macros::datetime!(2031-07-09 0:00 UTC).unix_timestamp();
        assert_eq!(not_after(cert.der()), Some(expected));
        params.not_after = rcgen::date_time_ymd(2051, 1, 2);
        let cert = params.self_signed(&key).unwrap();
        let expected = time::macros::datetime!(2051-01-02 0:00 UTC).unix_timestamp();
        assert_eq!(not_after(cert.der()), Some(expected));
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            &cert.der()[..40],
        ] {
            assert_eq!(not_after(bad), None);
        }
    }
}
