//! Serving one device's profile.
//!
//! Order of decisions: plain HTTP allowed for the class (else 403); a client certificate, if
//! one was presented, must name the requested MAC, and a class with `client_cert = true` needs
//! one (else 403); the MAC must be a device provd knows (else 404). Then the profile comes from
//! the cache when none of its inputs changed (template generation, lease address, model and
//! version, upgrade rule), or is rendered, checked against its format, given its version
//! (bumped and synced when the body changed), encrypted when the class has a key, and cached
//! with its ETag. Conditional requests get 304.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use provd_config::ProfileFormat;
use provd_profiles::{Format, etag};
use provd_web::Peer;

use provd_files::template::mac_colon as colon;

use crate::render::Inputs;
use crate::{Httpd, body_for, plain_status, remote_ip};

/// A rendered, versioned (and maybe encrypted) profile.
#[derive(Debug)]
pub(crate) struct Cached {
    generation: u64,
    inputs: Inputs,
    version: u64,
    etag: HeaderValue,
    last_modified: HeaderValue,
    changed_at: u64,
    body: Bytes,
}

pub(crate) async fn serve(
    httpd: &Httpd,
    peer: &Peer,
    req: &Parts,
    class_idx: usize,
    mac: [u8; 6],
) -> Response {
    let class = &httpd.classes[class_idx];
    let path = req.uri.path();
    let spec = &class.spec;
    let now = provd_role::clock::unix_secs();
    let now32 = u32::try_from(now).unwrap_or(u32::MAX);
    // Records are kept for known devices only: a stream of refused requests for made-up MACs
    // must not grow the status map.
    let known = httpd.known(&mac, now32);
    // A refusal before the profile is rendered: recorded (known devices only) and counted.
    let forbid = |counter, why: &str| {
        record(
            httpd,
            known,
            &mac,
            peer,
            None,
            httpd.refuse(counter, StatusCode::FORBIDDEN, peer, path, why),
        )
    };
    if httpd.refusals.exhausted(peer.remote.ip(), now) {
        httpd.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        return plain_status(StatusCode::TOO_MANY_REQUESTS, "too many refused requests");
    }
    if !peer.tls && !spec.allow_plain {
        return forbid(
            &httpd.counters.refused_plain,
            "this class's profiles are served over HTTPS only",
        );
    }
    match &peer.client_cert {
        Some(cert) if !cert.macs().contains(&mac) => {
            let why = format!(
                "the client certificate (CN {:?}) does not name {}",
                cert.subject_cn.as_deref().unwrap_or(""),
                colon(&mac)
            );
            return forbid(&httpd.counters.refused_cert, &why);
        }
        None if spec.client_cert => {
            return forbid(
                &httpd.counters.refused_cert,
                "this class needs a client certificate naming the device",
            );
        }
        _ => {}
    }
    if !known {
        return httpd.refuse_as_unknown(
            &httpd.counters.unknown_device,
            peer,
            path,
            "unknown device",
        );
    }
    // TFTP's enforce rule: the device itself, by its lease or its certificate. Refused exactly
    // as an unknown device is, so a guess learns nothing.
    let cert_names_it = peer
        .client_cert
        .as_ref()
        .is_some_and(|c| c.macs().contains(&mac));
    if spec.enforce && !cert_names_it {
        let held = match (&httpd.devices, peer.remote.ip()) {
            (Some(d), std::net::IpAddr::V4(ip)) => d.enforce(&mac, ip, now32),
            (Some(_), _) => Err("not an IPv4 client".to_owned()),
            (None, _) => Err("no DHCP lease view in this process (set enforce = false)".to_owned()),
        };
        if let Err(why) = held {
            return httpd.refuse_as_unknown(&httpd.counters.refused_lease, peer, path, &why);
        }
    }
    let inputs = inputs(httpd, peer, req, &mac, now32);
    let (generation, env) = class.current();
    let key = (mac, class_idx);
    let hit = httpd
        .cache
        .get(&key)
        .map(|c| Arc::clone(&c))
        .filter(|c| c.generation == generation && c.inputs == inputs);
    let cached = match hit {
        Some(c) => c,
        None => {
            let rendered = tokio::task::block_in_place(|| {
                build(httpd, class_idx, &env, generation, &mac, inputs, now)
            });
            match rendered {
                Ok(c) => {
                    let c = Arc::new(c);
                    httpd.cache.insert(key, Arc::clone(&c));
                    c
                }
                Err(why) => {
                    httpd.counters.render_errors.fetch_add(1, Ordering::Relaxed);
                    if let Some(held) = httpd.log_gate.allow() {
                        tracing::error!(class = %class.name, mac = %colon(&mac), error = %why, suppressed = held, "profile not rendered");
                    }
                    return record(
                        httpd,
                        known,
                        &mac,
                        peer,
                        None,
                        plain_status(StatusCode::INTERNAL_SERVER_ERROR, "profile not rendered"),
                    );
                }
            }
        }
    };
    if not_modified(&req.headers, &cached) {
        httpd.counters.not_modified.fetch_add(1, Ordering::Relaxed);
        let mut r = Response::new(axum::body::Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        let h = r.headers_mut();
        h.insert(header::ETAG, cached.etag.clone());
        h.insert(header::LAST_MODIFIED, cached.last_modified.clone());
        return record(httpd, known, &mac, peer, Some(cached.version), r);
    }
    httpd
        .counters
        .profiles_served
        .fetch_add(1, Ordering::Relaxed);
    let content_type = match (spec.key.is_some(), spec.format) {
        (true, _) => "application/octet-stream",
        (false, ProfileFormat::Xml) => "text/xml; charset=utf-8",
        (false, ProfileFormat::Kvp) => "text/plain; charset=utf-8",
    };
    let mut r = Response::new(body_for(&req.method, cached.body.clone()));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(cached.body.len()));
    h.insert(header::ETAG, cached.etag.clone());
    h.insert(header::LAST_MODIFIED, cached.last_modified.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-profile-version", HeaderValue::from(cached.version));
    record(httpd, known, &mac, peer, Some(cached.version), r)
}

/// Notes the request in the device's record (known devices only) and passes the response
/// through.
fn record(
    httpd: &Httpd,
    known: bool,
    mac: &[u8; 6],
    peer: &Peer,
    version: Option<u64>,
    r: Response,
) -> Response {
    if !known {
        return r;
    }
    let mut s = httpd.status.entry(*mac).or_default();
    s.last_seen_ms = provd_role::clock::unix_millis();
    s.last_remote = peer.remote.to_string();
    s.last_status = r.status().as_u16();
    s.last_tls = peer.tls;
    s.requests += 1;
    if version.is_some() {
        s.last_version_served = version;
    }
    drop(s);
    if let (Some(v), true) = (version, r.status() == StatusCode::OK) {
        httpd.served(*mac, v, peer.remote, peer.tls);
    }
    r
}

/// If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
fn not_modified(h: &HeaderMap, c: &Cached) -> bool {
    if let Some(inm) = h.get(header::IF_NONE_MATCH) {
        let etag = c.etag.to_str().unwrap_or("");
        return inm.to_str().is_ok_and(|v| etag::if_none_match(v, etag));
    }
    if let Some(ims) = h
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
    {
        let changed = SystemTime::UNIX_EPOCH + Duration::from_secs(c.changed_at);
        return changed <= ims;
    }
    false
}

/// The request's render inputs: address, model/version, upgrade rule.
fn inputs(httpd: &Httpd, peer: &Peer, req: &Parts, mac: &[u8; 6], now: u32) -> Inputs {
    let ip = httpd
        .devices
        .as_ref()
        .and_then(|d| d.get(mac, now))
        .map_or_else(|| remote_ip(peer).to_string(), |f| f.addr.to_string());
    let mut model = String::new();
    let mut swver = String::new();
    if let Some(q) = req.uri.query() {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            match &*k {
                "pn" | "model" => model = v.into_owned(),
                "swver" | "ver" => swver = v.into_owned(),
                _ => {}
            }
        }
    }
    if (model.is_empty() || swver.is_empty())
        && let Some((m, v)) = req
            .headers
            .get(header::USER_AGENT)
            .and_then(|ua| ua.to_str().ok())
            .and_then(provd_profiles::upgrade::from_user_agent)
    {
        if model.is_empty() {
            model = m.to_owned();
        }
        if swver.is_empty() {
            swver = v.to_owned();
        }
    }
    let upgrade = if model.is_empty() || swver.is_empty() {
        None
    } else {
        provd_profiles::upgrade::select(&httpd.upgrade_rules, &model, &swver).map(|r| {
            let scheme = if peer.tls { "https" } else { "http" };
            let host = req
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '@']))
                .map_or_else(|| peer.local.to_string(), str::to_owned);
            (
                format!("{scheme}://{host}/firmware/{}", r.firmware),
                r.firmware.clone(),
                r.version.clone(),
            )
        })
    };
    Inputs {
        ip,
        model,
        swver,
        upgrade,
        record: httpd.catalog().resolve(mac).map(|r| r.fingerprint()),
    }
}

/// Render, check, version, encrypt. Runs under `block_in_place`: it may sync the version log.
fn build(
    httpd: &Httpd,
    class_idx: usize,
    env: &minijinja::Environment<'static>,
    generation: u64,
    mac: &[u8; 6],
    inputs: Inputs,
    now: u64,
) -> Result<Cached, String> {
    let class = &httpd.classes[class_idx];
    let spec = &class.spec;
    let merged = httpd.catalog().resolve(mac).map(|r| r.merged_vars());
    let body = class.render(env, mac, &inputs, &httpd.vars, merged.as_ref())?;
    httpd.counters.rendered.fetch_add(1, Ordering::Relaxed);
    let format = match spec.format {
        ProfileFormat::Kvp => Format::Kvp,
        ProfileFormat::Xml => Format::Xml,
    };
    provd_profiles::validate(format, body.as_bytes())
        .map_err(|e| format!("the rendered profile is not valid: {e}"))?;
    let body_hash = etag::hash64(body.as_bytes());
    let (entry, bumped) = httpd
        .versions
        .settle(mac, body_hash, spec.first_version, now)
        .map_err(|e| format!("{}: {e}", httpd.versions.path().display()))?;
    if bumped {
        httpd.counters.version_bumps.fetch_add(1, Ordering::Relaxed);
        tracing::info!(class = %class.name, mac = %colon(mac), version = entry.version, "profile version bumped");
    }
    let versioned =
        provd_profiles::set_version(format, body.as_bytes(), &spec.version_field, entry.version)
            .map_err(|e| e.to_string())?;
    let served = match &spec.key {
        Some(key) => {
            let mut salt = [0u8; 8];
            getrandom::getrandom(&mut salt).map_err(|e| format!("no random salt: {e}"))?;
            provd_profiles::crypto::encrypt(&versioned, key.as_bytes(), salt)
        }
        None => versioned,
    };
    let tag = etag::profile_etag(entry.version, &served);
    let last_modified =
        httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(entry.changed_at));
    Ok(Cached {
        generation,
        inputs,
        version: entry.version,
        etag: HeaderValue::from_str(&tag).map_err(|e| e.to_string())?,
        last_modified: HeaderValue::from_str(&last_modified).map_err(|e| e.to_string())?,
        changed_at: entry.changed_at,
        body: Bytes::from(served),
    })
}
