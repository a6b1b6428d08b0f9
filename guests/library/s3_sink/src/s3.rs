//! The S3 calls the sink makes, signed with SigV4 and sent over `wasi:http`:
//! PutObject (conditional or not), the multipart upload (Create,
//! UploadPart, Complete, Abort), HeadObject, ListObjectsV2 and DeleteObject; and what each answer means for the
//! events (retry, or fail the call with the cause named).

use crate::sigv4::{amz_date, sha256_hex, uri_encode, Credentials, Signing};
use flumen_guest_common::endpoint::Endpoint;
use flumen_guest_common::http::{self, HttpError, Request, Response};

/// Largest error or listing body read.
const BODY_LIMIT: usize = 1 << 20;

/// Why a call to the store did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Error {
    /// Worth sending again: a 5xx, throttling, a timeout or a broken
    /// connection.
    Retry(String),
    /// Sending again as it is cannot succeed (bad credentials, missing
    /// bucket, denied access, a malformed request): the cause, named for
    /// the operator.
    Refused { code: String, message: String },
}

impl S3Error {
    /// The store refused a conditional write: an object has the key.
    pub fn is_precondition_failed(&self) -> bool {
        matches!(self, S3Error::Refused { code, .. } if code == "PreconditionFailed")
    }
}

/// The header that makes a write create its key only if no object has it.
fn if_none_match() -> (String, String) {
    ("if-none-match".to_owned(), "*".to_owned())
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            S3Error::Retry(m) => f.write_str(m),
            S3Error::Refused { message, .. } => f.write_str(message),
        }
    }
}

/// One bucket of one store, and how to reach it.
pub struct Store {
    /// Scheme and host of the S3 endpoint.
    pub endpoint: Endpoint,
    /// The bucket.
    pub bucket: String,
    /// The signing region.
    pub region: String,
    /// `/bucket/key` (path style) rather than `bucket.host/key`.
    pub path_style: bool,
    /// What requests are signed with.
    pub credentials: Credentials,
    /// Where they came from (environment variable names), for messages.
    pub credential_vars: (String, String),
    /// Connect and first-byte timeout.
    pub timeout_ns: u64,
    /// Sign the body's SHA-256 (`false`: `UNSIGNED-PAYLOAD`).
    pub sign_payload: bool,
}

/// The text of the first `<tag>…</tag>` in `xml`, unescaped.
pub fn xml_tag(xml: &str, tag: &str) -> Option<String> {
    xml_tags(xml, tag).next()
}

/// The text of every `<tag>…</tag>` in `xml`, unescaped.
pub fn xml_tags<'a>(xml: &'a str, tag: &str) -> impl Iterator<Item = String> + 'a {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut rest = xml;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let len = rest[start..].find(&close)?;
        let text = &rest[start..start + len];
        rest = &rest[start + len + close.len()..];
        Some(
            text.replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        )
    })
}

impl Store {
    fn authority(&self) -> String {
        if self.path_style {
            self.endpoint.authority.clone()
        } else {
            format!("{}.{}", self.bucket, self.endpoint.authority)
        }
    }

    /// The encoded path of `key` (the bucket itself for `None`).
    fn path(&self, key: Option<&str>) -> String {
        let key = key.map(|k| uri_encode(k, true));
        let bucket = uri_encode(&self.bucket, false);
        match (self.path_style, key) {
            (true, Some(k)) => format!("/{bucket}/{k}"),
            (true, None) => format!("/{bucket}"),
            (false, Some(k)) => format!("/{k}"),
            (false, None) => "/".to_owned(),
        }
    }

    /// Signs and sends one request.
    fn call(
        &self,
        method: &str,
        key: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Response, S3Error> {
        let authority = self.authority();
        let path = self.path(key);
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
            .collect();
        let payload_hash = if self.sign_payload {
            sha256_hex(body)
        } else {
            "UNSIGNED-PAYLOAD".to_owned()
        };
        let now = flumen_guest_common::dates::now_millis().div_euclid(1000);
        let mut all = headers.to_vec();
        all.extend(self.credentials.sign(&Signing {
            method,
            host: &authority,
            path: &path,
            query: &query,
            headers,
            payload_hash: &payload_hash,
            amz_date: &amz_date(now),
            region: &self.region,
        }));
        let mut path_and_query = path;
        if !query.is_empty() {
            path_and_query.push('?');
            let parts: Vec<String> = query
                .iter()
                .map(|(k, v)| {
                    if v.is_empty() {
                        k.clone()
                    } else {
                        format!("{k}={v}")
                    }
                })
                .collect();
            path_and_query.push_str(&parts.join("&"));
        }
        let response = http::send(
            &Request {
                method,
                endpoint: &self.endpoint,
                authority: Some(&authority),
                path_and_query: &path_and_query,
                headers: &all,
                body,
                timeout_ns: self.timeout_ns,
            },
            BODY_LIMIT,
        )
        .map_err(|e| match e {
            HttpError::Denied => S3Error::Refused {
                code: "HTTP-request-denied".into(),
                message: format!(
                    "the host refused the request to {}: grant it with http_allow = [\"{}\"]",
                    self.endpoint.authority,
                    self.endpoint.host()
                ),
            },
            HttpError::Transient(m) => S3Error::Retry(m),
            HttpError::Failed(m) => S3Error::Refused {
                code: "request".into(),
                message: m,
            },
        })?;
        if (200..300).contains(&response.status) {
            Ok(response)
        } else {
            Err(self.classify(response.status, &response.text(), key))
        }
    }

    /// What an error answer means, with the cause named.
    pub fn classify(&self, status: u16, body: &str, key: Option<&str>) -> S3Error {
        // A HEAD's error answer has no body: its status says what it is.
        let code = xml_tag(body, "Code").unwrap_or_else(|| {
            match status {
                403 => "AccessDenied",
                404 => "NoSuchKey",
                _ => "",
            }
            .to_owned()
        });
        let said = xml_tag(body, "Message").unwrap_or_default();
        let transient = matches!(
            code.as_str(),
            "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable" | "Throttling"
        );
        if status >= 500 || status == 429 || status == 408 || transient {
            return S3Error::Retry(format!("S3 answered {status} {code}: {said}"));
        }
        let (key_var, secret_var) = &self.credential_vars;
        let object = match key {
            Some(k) => format!("{}/{k}", self.bucket),
            None => self.bucket.clone(),
        };
        let message = match code.as_str() {
            "InvalidAccessKeyId" => format!(
                "the store does not know access key `{}` (S3 InvalidAccessKeyId): check the key \
                 in {key_var}",
                self.credentials.access_key
            ),
            "SignatureDoesNotMatch" => format!(
                "the secret key does not match access key `{}` (S3 SignatureDoesNotMatch): check \
                 {secret_var}",
                self.credentials.access_key
            ),
            "ExpiredToken" | "TokenRefreshRequired" => format!(
                "the credentials have expired (S3 {code}): renew them and reload the pipeline"
            ),
            "AccessDenied" => format!(
                "access to `{object}` is denied (S3 AccessDenied): access key `{}` needs \
                 s3:PutObject on the bucket (and s3:ListBucket, s3:GetObject and \
                 s3:DeleteObject with exactly_once)",
                self.credentials.access_key
            ),
            "NoSuchBucket" => format!(
                "bucket `{}` does not exist (S3 NoSuchBucket): create it, or fix `bucket`",
                self.bucket
            ),
            "RequestTimeTooSkewed" => format!(
                "this machine's clock differs from the store's by more than 15 minutes (S3 \
                 RequestTimeTooSkewed): {said}"
            ),
            _ => format!("S3 refused the request for `{object}`: {status} {code} {said}"),
        };
        S3Error::Refused { code, message }
    }

    /// Checks that the bucket exists and the credentials are accepted: a
    /// listing of at most one key. `Ok` also when the key may not list.
    pub fn probe(&self) -> Result<(), S3Error> {
        match self.call(
            "GET",
            None,
            &[("list-type", "2"), ("max-keys", "1")],
            &[],
            b"",
        ) {
            Err(S3Error::Refused { code, .. }) if code == "AccessDenied" => Ok(()),
            other => other.map(drop),
        }
    }

    /// Stores `body` as `key` in one PutObject. With `once`, only if no
    /// object has the key (`If-None-Match: *`); one that has it answers
    /// [`S3Error::is_precondition_failed`].
    pub fn put(
        &self,
        key: &str,
        body: &[u8],
        headers: &[(String, String)],
        once: bool,
    ) -> Result<(), S3Error> {
        let mut headers = headers.to_vec();
        if once {
            headers.push(if_none_match());
        }
        self.call("PUT", Some(key), &[], &headers, body).map(drop)
    }

    /// The object's user metadata `name` (`x-amz-meta-<name>`); `None`
    /// when it has none by that name. A missing object is worth a retry:
    /// it was seen a moment ago.
    pub fn metadata(&self, key: &str, name: &str) -> Result<Option<String>, S3Error> {
        match self.call("HEAD", Some(key), &[], &[], b"") {
            Ok(r) => Ok(r.header(&format!("x-amz-meta-{name}")).map(str::to_owned)),
            Err(S3Error::Refused { code, .. }) if code == "NoSuchKey" => Err(S3Error::Retry(
                format!("object `{key}` was listed but is not there"),
            )),
            Err(e) => Err(e),
        }
    }

    /// Stores `body` as `key` in a multipart upload of `part_bytes` parts.
    /// The object exists only once CompleteMultipartUpload succeeds; a
    /// failed upload is aborted, so that its parts do not linger. With
    /// `once`, the completion is conditional, as [`Self::put`]'s.
    pub fn put_multipart(
        &self,
        key: &str,
        body: &[u8],
        part_bytes: usize,
        headers: &[(String, String)],
        once: bool,
    ) -> Result<(), S3Error> {
        let created = self.call("POST", Some(key), &[("uploads", "")], headers, b"")?;
        let Some(upload_id) = xml_tag(&created.text(), "UploadId") else {
            return Err(S3Error::Retry(format!(
                "CreateMultipartUpload for `{key}` answered without an UploadId"
            )));
        };
        let parts = (|| {
            let mut etags = Vec::new();
            for (i, part) in body.chunks(part_bytes.max(1)).enumerate() {
                let number = (i + 1).to_string();
                let r = self.call(
                    "PUT",
                    Some(key),
                    &[("partNumber", &number), ("uploadId", &upload_id)],
                    &[],
                    part,
                )?;
                let etag = r.header("etag").unwrap_or_default().to_owned();
                etags.push(format!(
                    "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag></Part>",
                    etag.replace('&', "&amp;").replace('"', "&quot;")
                ));
            }
            let complete = format!(
                "<CompleteMultipartUpload>{}</CompleteMultipartUpload>",
                etags.concat()
            );
            let mut headers = vec![("content-type".into(), "application/xml".into())];
            if once {
                headers.push(if_none_match());
            }
            let r = self.call(
                "POST",
                Some(key),
                &[("uploadId", &upload_id)],
                &headers,
                complete.as_bytes(),
            )?;
            // CompleteMultipartUpload can fail after answering 200: the
            // error is then in the body.
            let text = r.text();
            if text.contains("<Error>") {
                return Err(self.classify(500, &text, Some(key)));
            }
            Ok(())
        })();
        if parts.is_err() {
            let _ = self.call("DELETE", Some(key), &[("uploadId", &upload_id)], &[], b"");
        }
        parts
    }

    /// Every key under `prefix` (after `start_after`, if given), following
    /// continuation tokens.
    pub fn list(&self, prefix: &str, start_after: Option<&str>) -> Result<Vec<String>, S3Error> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", prefix)];
            if let Some(after) = start_after {
                query.push(("start-after", after));
            }
            if let Some(t) = &token {
                query.push(("continuation-token", t));
            }
            let text = self.call("GET", None, &query, &[], b"")?.text();
            keys.extend(xml_tags(&text, "Key"));
            token = xml_tag(&text, "NextContinuationToken")
                .filter(|_| xml_tag(&text, "IsTruncated").as_deref() == Some("true"));
            if token.is_none() {
                return Ok(keys);
            }
        }
    }

    /// Deletes `key` (deleting a missing key succeeds, as S3 does).
    pub fn delete(&self, key: &str) -> Result<(), S3Error> {
        self.call("DELETE", Some(key), &[], &[], b"").map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(path_style: bool) -> Store {
        Store {
            endpoint: Endpoint::parse("endpoint", "http://127.0.0.1:8333").expect("valid"),
            bucket: "events".into(),
            region: "us-east-1".into(),
            path_style,
            credentials: Credentials {
                access_key: "AK".into(),
                secret_key: "SK".into(),
                session_token: None,
            },
            credential_vars: ("AWS_ACCESS_KEY_ID".into(), "AWS_SECRET_ACCESS_KEY".into()),
            timeout_ns: 1,
            sign_payload: true,
        }
    }

    #[test]
    fn paths_by_style() {
        assert_eq!(
            store(true).path(Some("a b/c.jsonl")),
            "/events/a%20b/c.jsonl"
        );
        assert_eq!(store(true).path(None), "/events");
        assert_eq!(store(false).path(Some("a/c")), "/a/c");
        assert_eq!(store(false).authority(), "events.127.0.0.1:8333");
    }

    #[test]
    fn classifies_answers() {
        let s = store(true);
        let xml =
            |code: &str| format!("<Error><Code>{code}</Code><Message>m &amp; n</Message></Error>");
        assert!(
            matches!(s.classify(503, &xml("SlowDown"), None), S3Error::Retry(m) if m.contains("m & n"))
        );
        assert!(matches!(
            s.classify(400, &xml("RequestTimeout"), None),
            S3Error::Retry(_)
        ));
        let refused = |status, code: &str| match s.classify(status, &xml(code), Some("k")) {
            S3Error::Refused { message, .. } => message,
            S3Error::Retry(m) => panic!("retried: {m}"),
        };
        assert!(refused(403, "InvalidAccessKeyId").contains("check the key in AWS_ACCESS_KEY_ID"));
        assert!(refused(403, "SignatureDoesNotMatch").contains("AWS_SECRET_ACCESS_KEY"));
        assert!(refused(400, "ExpiredToken").contains("expired"));
        assert!(refused(403, "AccessDenied").contains("`events/k` is denied"));
        assert!(refused(404, "NoSuchBucket").contains("bucket `events` does not exist"));
    }

    #[test]
    fn reads_listings() {
        let xml = "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a&amp;b</Key>\
                   </Contents><Contents><Key>c</Key></Contents>\
                   <NextContinuationToken>t1</NextContinuationToken></ListBucketResult>";
        assert_eq!(xml_tags(xml, "Key").collect::<Vec<_>>(), ["a&b", "c"]);
        assert_eq!(xml_tag(xml, "NextContinuationToken").as_deref(), Some("t1"));
    }
}
