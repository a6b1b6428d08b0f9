//! AWS Signature Version 4 for S3 requests: the canonical request, the
//! string to sign and the `Authorization` header.
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The credentials a request is signed with.
#[derive(Clone)]
pub struct Credentials {
    /// The access key id.
    pub access_key: String,
    /// The secret access key.
    pub secret_key: String,
    /// A session token (temporary credentials), sent as
    /// `x-amz-security-token`.
    pub session_token: Option<String>,
}

/// What is signed for one request.
pub struct Signing<'a> {
    /// `GET`, `PUT`, …
    pub method: &'a str,
    /// The host header's value (with the port, if not the scheme's default).
    pub host: &'a str,
    /// The path, already URI-encoded (S3 encodes it once).
    pub path: &'a str,
    /// Query parameters, already URI-encoded, in any order.
    pub query: &'a [(String, String)],
    /// Other headers to sign and send (lower-case names).
    pub headers: &'a [(String, String)],
    /// Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
    pub payload_hash: &'a str,
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: &'a str,
    /// The region, e.g. `us-east-1`.
    pub region: &'a str,
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// URI-encodes `s` as SigV4 wants it: every byte but `A-Z a-z 0-9 - . _ ~`
/// as `%XX`, and `/` too unless `keep_slash`.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Credentials {
    /// The headers to add to the request: `x-amz-date`,
    /// `x-amz-content-sha256`, the session token if any, and
    /// `authorization`. The caller sends `s.headers` as well.
    pub fn sign(&self, s: &Signing<'_>) -> Vec<(String, String)> {
        let mut signed: Vec<(String, String)> = s.headers.to_vec();
        signed.push(("host".into(), s.host.to_owned()));
        signed.push(("x-amz-date".into(), s.amz_date.to_owned()));
        signed.push(("x-amz-content-sha256".into(), s.payload_hash.to_owned()));
        if let Some(t) = &self.session_token {
            signed.push(("x-amz-security-token".into(), t.clone()));
        }
        signed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut query: Vec<&(String, String)> = s.query.iter().collect();
        query.sort();
        let canonical_query = query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let canonical_headers: String = signed
            .iter()
            .map(|(n, v)| format!("{n}:{}\n", v.trim()))
            .collect();
        let signed_names = signed
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let canonical = format!(
            "{}\n{}\n{canonical_query}\n{canonical_headers}\n{signed_names}\n{}",
            s.method, s.path, s.payload_hash
        );
        let date = &s.amz_date[..8.min(s.amz_date.len())];
        let scope = format!("{date}/{}/s3/aws4_request", s.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
            s.amz_date,
            sha256_hex(canonical.as_bytes())
        );
        let key = [date, s.region, "s3", "aws4_request"].iter().fold(
            format!("AWS4{}", self.secret_key).into_bytes(),
            |k, part| hmac(&k, part.as_bytes()),
        );
        let signature = hex(&hmac(&key, to_sign.as_bytes()));
        let mut out: Vec<(String, String)> = signed
            .into_iter()
            .filter(|(n, _)| n != "host" && !s.headers.iter().any(|(h, _)| h == n))
            .collect();
        out.push((
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_names}, \
                 Signature={signature}",
                self.access_key
            ),
        ));
        out
    }
}

/// `YYYYMMDDTHHMMSSZ` for `secs` since the epoch.
pub fn amz_date(secs: i64) -> String {
    let (y, mo, d) = flumen_guest_common::dates::civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}{mo:02}{d:02}T{:02}{:02}{:02}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The credentials of AWS's SigV4 examples.
    fn example_credentials() -> Credentials {
        Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    /// AWS's worked example "GET Object" in the SigV4 header-signing docs.
    #[test]
    fn signs_aws_example_get_object() {
        let (creds, empty) = (example_credentials(), sha256_hex(b""));
        let headers = creds.sign(&Signing {
            method: "GET",
            host: "examplebucket.s3.amazonaws.com",
            path: "/test.txt",
            query: &[],
            headers: &[("range".into(), "bytes=0-9".into())],
            payload_hash: &empty,
            amz_date: "20130524T000000Z",
            region: "us-east-1",
        });
        let auth = headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .map(|(_, v)| v.as_str());
        assert_eq!(
            auth,
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/\
                 aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
                 Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            )
        );
    }

    /// AWS's "GET Bucket (List Objects)" example: a signed query string.
    #[test]
    fn signs_aws_example_list_objects() {
        let (creds, empty) = (example_credentials(), sha256_hex(b""));
        let headers = creds.sign(&Signing {
            method: "GET",
            host: "examplebucket.s3.amazonaws.com",
            path: "/",
            query: &[
                ("prefix".into(), "J".into()),
                ("max-keys".into(), "2".into()),
            ],
            headers: &[],
            payload_hash: &empty,
            amz_date: "20130524T000000Z",
            region: "us-east-1",
        });
        let auth = &headers.last().expect("authorization").1;
        assert!(
            auth.ends_with(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{auth}"
        );
    }

    #[test]
    fn encodes_like_sigv4() {
        assert_eq!(uri_encode("a b/c~d*", true), "a%20b/c~d%2A");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
        assert_eq!(amz_date(1_369_353_600), "20130524T000000Z");
    }
}
