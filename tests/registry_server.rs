//! `amber registry serve` against the distribution spec's flows, driven by
//! a plain HTTP client on loopback: uploads (monolithic, chunked, resumed,
//! cross-mounted), manifests, listings, deletes, error codes, auth,
//! read-only mode, gc, and a server killed mid-upload.
//!
//! The OCI distribution-spec conformance suite is not run: it is a Go module
//! (ginkgo v2, Go >= 1.21) and neither it nor its dependencies can be
//! fetched here (no Go module proxy; Debian 12 ships Go 1.19 and ginkgo v1).
//! These tests cover its areas instead: pull (blob and manifest HEAD/GET by
//! tag and digest, 404s, error bodies), push (streamed, monolithic, chunked
//! with out-of-order and repeated chunks → 416, upload status, cross-mount,
//! manifest without layers), content discovery (tags with `n`/`last`,
//! referrers) and content management (tag, manifest and blob deletes).

mod registry_common;

use registry_common::{
    cut_off, digest, files_under, hang, image_manifest, push_blob, Registry, TestImage,
};

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("amber-registry-")
        .tempdir()
        .unwrap()
}

/// Wait until the upload at `location` holds at least `min` bytes on disk.
fn wait_for_upload(data: &std::path::Path, location: &str, min: u64) {
    let id = location.rsplit('/').next().unwrap();
    let file = data.join("uploads").join(id).join("data");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) < min {
        assert!(
            std::time::Instant::now() < deadline,
            "upload {id} never reached {min} bytes"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn start() -> (tempfile::TempDir, Registry) {
    let dir = tempdir();
    let r = Registry::start(&dir.path().join("data"), &[]);
    (dir, r)
}

#[test]
fn base_endpoint_and_unknown_paths() {
    let (_d, r) = start();
    let resp = r.req("GET", "/v2/", &[], b"");
    resp.expect(200);
    assert_eq!(
        resp.header("Docker-Distribution-API-Version"),
        Some("registry/2.0")
    );
    r.req("GET", "/v2/a/nothing-here", &[], b"").expect(404);
    r.req("GET", "/other", &[], b"").expect(404);
}

#[test]
fn monolithic_blob_push_head_get_and_ranges() {
    let (_d, r) = start();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let d = digest(&data);
    let resp = r.req(
        "POST",
        &format!("/v2/lib/x/blobs/uploads/?digest={d}"),
        &[],
        &data,
    );
    resp.expect(201);
    assert_eq!(
        resp.header("Location"),
        Some(format!("/v2/lib/x/blobs/{d}").as_str())
    );
    assert_eq!(resp.header("Docker-Content-Digest"), Some(d.as_str()));

    let head = r.req("HEAD", &format!("/v2/lib/x/blobs/{d}"), &[], b"");
    head.expect(200);
    assert_eq!(head.header("Content-Length"), Some("100000"));
    assert_eq!(head.header("Docker-Content-Digest"), Some(d.as_str()));
    assert!(head.body.is_empty());

    let get = r.req("GET", &format!("/v2/lib/x/blobs/{d}"), &[], b"");
    get.expect(200);
    assert_eq!(get.body, data);

    let part = r.req(
        "GET",
        &format!("/v2/lib/x/blobs/{d}"),
        &[("Range", "bytes=10-19")],
        b"",
    );
    part.expect(206);
    assert_eq!(part.body, &data[10..20]);
    assert_eq!(part.header("Content-Range"), Some("bytes 10-19/100000"));
    let tail = r.req(
        "GET",
        &format!("/v2/lib/x/blobs/{d}"),
        &[("Range", "bytes=-5")],
        b"",
    );
    tail.expect(206);
    assert_eq!(tail.body, &data[99_995..]);
    let bad = r.req(
        "GET",
        &format!("/v2/lib/x/blobs/{d}"),
        &[("Range", "bytes=100000-")],
        b"",
    );
    bad.expect_error(416, "RANGE_INVALID");
    assert_eq!(bad.header("Content-Range"), Some("bytes */100000"));

    // Another repository does not hold it.
    r.req("HEAD", &format!("/v2/lib/y/blobs/{d}"), &[], b"")
        .expect(404);
    r.req("GET", &format!("/v2/lib/y/blobs/{d}"), &[], b"")
        .expect_error(404, "BLOB_UNKNOWN");
}

#[test]
fn bad_digests_are_refused_and_nothing_stored() {
    let (dir, r) = start();
    let wrong = digest(b"something else");
    r.req(
        "POST",
        &format!("/v2/a/blobs/uploads/?digest={wrong}"),
        &[],
        b"payload",
    )
    .expect_error(400, "DIGEST_INVALID");
    r.req("GET", &format!("/v2/a/blobs/{wrong}"), &[], b"")
        .expect(404);
    r.req(
        "GET",
        &format!("/v2/a/blobs/{}", digest(b"payload")),
        &[],
        b"",
    )
    .expect(404);
    r.req("POST", "/v2/a/blobs/uploads/?digest=sha256:abc", &[], b"x")
        .expect_error(400, "DIGEST_INVALID");
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    r.req(
        "POST",
        &format!("/v2/a/blobs/uploads/?digest={sha512}"),
        &[],
        b"x",
    )
    .expect_error(400, "UNSUPPORTED");
    r.req("GET", "/v2/a/blobs/sha256:../../../etc/passwd", &[], b"")
        .expect(404);
    let blobs: Vec<_> = files_under(&dir.path().join("data/blobs"));
    assert!(blobs.is_empty(), "{blobs:?}");
}

#[test]
fn chunked_upload_with_status_out_of_order_and_cancel() {
    let (_d, r) = start();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let d = digest(&data);
    let start = r.req("POST", "/v2/c/blobs/uploads/", &[], b"");
    start.expect(202);
    let loc = start.header("Location").unwrap().to_string();
    let uuid = start.header("Docker-Upload-UUID").unwrap().to_string();
    assert!(loc.ends_with(&uuid), "{loc}");
    assert_eq!(start.header("Range"), Some("0-0"));

    let p1 = r.req(
        "PATCH",
        &loc,
        &[
            ("Content-Range", "0-99999"),
            ("Content-Type", "application/octet-stream"),
        ],
        &data[..100_000],
    );
    p1.expect(202);
    assert_eq!(p1.header("Range"), Some("0-99999"));
    // Streamed chunk, no Content-Range.
    r.req("PATCH", &loc, &[], &data[100_000..200_000])
        .expect(202);
    let st = r.req("GET", &loc, &[], b"");
    st.expect(204);
    assert_eq!(st.header("Range"), Some("0-199999"));
    assert_eq!(st.header("Docker-Upload-UUID"), Some(uuid.as_str()));
    // A repeated or out-of-order chunk: 416 with where the upload stands.
    let ooo = r.req(
        "PATCH",
        &loc,
        &[("Content-Range", "100000-199999")],
        &data[100_000..200_000],
    );
    ooo.expect(416);
    assert_eq!(ooo.header("Range"), Some("0-199999"));
    // Last chunk with the PUT.
    let put = r.req("PUT", &format!("{loc}?digest={d}"), &[], &data[200_000..]);
    put.expect(201);
    assert_eq!(put.header("Docker-Content-Digest"), Some(d.as_str()));
    assert_eq!(
        r.req("GET", &format!("/v2/c/blobs/{d}"), &[], b"").body,
        data
    );
    r.req("GET", &loc, &[], b"")
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");

    // Cancel.
    let loc2 = r
        .req("POST", "/v2/c/blobs/uploads/", &[], b"")
        .header("Location")
        .unwrap()
        .to_string();
    r.req("PATCH", &loc2, &[], b"abc").expect(202);
    r.req("DELETE", &loc2, &[], b"").expect(204);
    r.req("GET", &loc2, &[], b"")
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    r.req("PATCH", &loc2, &[], b"abc")
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    // Someone else's upload id, and garbage ids.
    r.req("GET", &loc.replace("/v2/c/", "/v2/other/"), &[], b"")
        .expect(404);
    r.req("GET", "/v2/c/blobs/uploads/..%2f..%2fetc", &[], b"")
        .expect(404);
    // PUT without digest.
    let loc3 = r
        .req("POST", "/v2/c/blobs/uploads/", &[], b"")
        .header("Location")
        .unwrap()
        .to_string();
    r.req("PUT", &loc3, &[], b"x")
        .expect_error(400, "DIGEST_INVALID");
}

#[test]
fn upload_cut_off_midway_resumes() {
    let (_d, r) = start();
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 253) as u8).collect();
    let d = digest(&data);
    let loc = r
        .req("POST", "/v2/res/blobs/uploads/", &[], b"")
        .header("Location")
        .unwrap()
        .to_string();
    // The client declares the whole blob, sends 700 kB, and disconnects.
    cut_off(r.port, "PATCH", &loc, &[], data.len(), &data[..700_000]);
    // On a loaded machine the server may still be taking the bytes in.
    wait_for_upload(&r.data, &loc, 700_000);
    let st = r.req("GET", &loc, &[], b"");
    st.expect(204);
    let range = st.header("Range").unwrap();
    let got: usize = range.strip_prefix("0-").unwrap().parse::<usize>().unwrap() + 1;
    assert!(got > 0 && got <= 700_000, "{range}");
    // Nothing is served for a partial upload.
    r.req("HEAD", &format!("/v2/res/blobs/{d}"), &[], b"")
        .expect(404);
    let cr = format!("{got}-{}", data.len() - 1);
    r.req("PATCH", &loc, &[("Content-Range", &cr)], &data[got..])
        .expect(202);
    r.req("PUT", &format!("{loc}?digest={d}"), &[], b"")
        .expect(201);
    assert_eq!(
        r.req("GET", &format!("/v2/res/blobs/{d}"), &[], b"").body,
        data
    );
}

#[test]
fn cross_repository_mount() {
    let (_d, r) = start();
    let d = push_blob(&r, "src/repo", b"shared layer");
    let m = r.req(
        "POST",
        &format!("/v2/dst/blobs/uploads/?mount={d}&from=src/repo"),
        &[],
        b"",
    );
    m.expect(201);
    assert_eq!(
        m.header("Location"),
        Some(format!("/v2/dst/blobs/{d}").as_str())
    );
    assert_eq!(
        r.req("GET", &format!("/v2/dst/blobs/{d}"), &[], b"").body,
        b"shared layer"
    );
    // Not in the source: a normal upload starts instead.
    let other = digest(b"absent");
    let m = r.req(
        "POST",
        &format!("/v2/dst2/blobs/uploads/?mount={other}&from=src/repo"),
        &[],
        b"",
    );
    m.expect(202);
    assert!(m
        .header("Location")
        .unwrap()
        .starts_with("/v2/dst2/blobs/uploads/"));
    // Source repository without the blob linked.
    let m = r.req(
        "POST",
        &format!("/v2/dst3/blobs/uploads/?mount={d}&from=nowhere"),
        &[],
        b"",
    );
    m.expect(202);
    r.req("HEAD", &format!("/v2/dst3/blobs/{d}"), &[], b"")
        .expect(404);
}

#[test]
fn manifests_by_tag_and_digest() {
    let (_d, r) = start();
    let img = TestImage::new("hi");
    let md = img.push(&r, "app", "v1");
    for reference in ["v1", md.as_str()] {
        let get = r.req("GET", &format!("/v2/app/manifests/{reference}"), &[], b"");
        get.expect(200);
        assert_eq!(get.body, img.manifest);
        assert_eq!(
            get.header("Content-Type"),
            Some("application/vnd.oci.image.manifest.v1+json")
        );
        assert_eq!(get.header("Docker-Content-Digest"), Some(md.as_str()));
        let head = r.req("HEAD", &format!("/v2/app/manifests/{reference}"), &[], b"");
        head.expect(200);
        assert_eq!(
            head.header("Content-Length").unwrap(),
            img.manifest.len().to_string()
        );
        assert!(head.body.is_empty());
    }
    // PUT by digest, and a Docker schema 2 manifest.
    let docker = String::from_utf8(img.manifest.clone())
        .unwrap()
        .replace(
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .into_bytes();
    let dd = digest(&docker);
    let ct = (
        "Content-Type",
        "application/vnd.docker.distribution.manifest.v2+json",
    );
    let put = r.req("PUT", &format!("/v2/app/manifests/{dd}"), &[ct], &docker);
    put.expect(201);
    assert_eq!(put.header("Docker-Content-Digest"), Some(dd.as_str()));
    let get = r.req("GET", &format!("/v2/app/manifests/{dd}"), &[], b"");
    assert_eq!(get.header("Content-Type"), Some(ct.1));
    // An index over both.
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": img.manifest.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": ct.1, "digest": dd, "size": docker.len()},
        ],
    })).unwrap();
    let ict = ("Content-Type", "application/vnd.oci.image.index.v1+json");
    r.req("PUT", "/v2/app/manifests/multi", &[ict], &index)
        .expect(201);
    assert_eq!(
        r.req("GET", "/v2/app/manifests/multi", &[], b"").body,
        index
    );
    // PUT by digest with ?tag= (distribution-spec main).
    let put = r.req(
        "PUT",
        &format!("/v2/app/manifests/{md}?tag=x1&tag=x2"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &img.manifest,
    );
    put.expect(201);
    let oci_tags: Vec<_> = put
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("OCI-Tag"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(oci_tags, ["x1", "x2"]);
    assert_eq!(
        r.req("GET", "/v2/app/manifests/x2", &[], b"").body,
        img.manifest
    );
    r.req(
        "PUT",
        &format!("/v2/app/manifests/{md}?tag=../x"),
        &[],
        &img.manifest,
    )
    .expect_error(400, "MANIFEST_INVALID");
    r.req(
        "POST",
        "/v2/app/blobs/uploads/?digest-algorithm=sha512",
        &[],
        b"",
    )
    .expect_error(400, "UNSUPPORTED");
    r.req(
        "POST",
        "/v2/app/blobs/uploads/?digest-algorithm=sha256",
        &[],
        b"",
    )
    .expect(202);
    // A tag moves.
    r.req("PUT", "/v2/app/manifests/v1", &[ct], &docker)
        .expect(201);
    assert_eq!(r.req("GET", "/v2/app/manifests/v1", &[], b"").body, docker);

    r.req("GET", "/v2/app/manifests/nope", &[], b"")
        .expect_error(404, "MANIFEST_UNKNOWN");
    r.req(
        "GET",
        &format!("/v2/app/manifests/{}", digest(b"x")),
        &[],
        b"",
    )
    .expect_error(404, "MANIFEST_UNKNOWN");
    r.req("GET", "/v2/other/manifests/v1", &[], b"").expect(404);
}

#[test]
fn manifest_errors() {
    let (_d, r) = start();
    let img = TestImage::new("x");
    let ct = ("Content-Type", "application/vnd.oci.image.manifest.v1+json");
    // Blobs not pushed yet.
    let resp = r.req("PUT", "/v2/e/manifests/t", &[ct], &img.manifest);
    resp.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    push_blob(&r, "e", &img.config);
    let resp = r.req("PUT", "/v2/e/manifests/t", &[ct], &img.manifest);
    resp.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(resp.json()["errors"][0]["detail"], digest(&img.layer));
    // Blobs in another repository do not count.
    push_blob(&r, "elsewhere", &img.layer);
    r.req("PUT", "/v2/e/manifests/t", &[ct], &img.manifest)
        .expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    push_blob(&r, "e", &img.layer);
    // Digest reference that does not match the body.
    r.req(
        "PUT",
        &format!("/v2/e/manifests/{}", digest(b"other")),
        &[ct],
        &img.manifest,
    )
    .expect_error(400, "DIGEST_INVALID");
    // Not JSON, wrong schema, unsupported media type, bad tag.
    r.req("PUT", "/v2/e/manifests/t", &[ct], b"not json")
        .expect_error(400, "MANIFEST_INVALID");
    r.req("PUT", "/v2/e/manifests/t", &[ct], br#"{"schemaVersion":1}"#)
        .expect_error(400, "MANIFEST_INVALID");
    r.req(
        "PUT",
        "/v2/e/manifests/t",
        &[("Content-Type", "text/plain")],
        br#"{"schemaVersion":2,"mediaType":"text/plain"}"#,
    )
    .expect_error(400, "MANIFEST_INVALID");
    r.req("PUT", "/v2/e/manifests/.bad", &[ct], &img.manifest)
        .expect_error(400, "MANIFEST_INVALID");
    // Index over a manifest the repository lacks.
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": ct.1, "digest": digest(&img.manifest), "size": 1}],
    }))
    .unwrap();
    r.req(
        "PUT",
        "/v2/e/manifests/i",
        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
        &index,
    )
    .expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    // Oversized: 4 MiB + 1.
    let mut big = image_manifest((&digest(&img.config), img.config.len()), &[]);
    big.truncate(big.len() - 1);
    big.extend_from_slice(br#","annotations":{"pad":""#);
    big.resize(4 * 1024 * 1024 + 1 - 3, b'a');
    big.extend_from_slice(br#""}}"#);
    r.req("PUT", "/v2/e/manifests/big", &[ct], &big)
        .expect_error(413, "SIZE_INVALID");
    // And finally all is well.
    r.req("PUT", "/v2/e/manifests/t", &[ct], &img.manifest)
        .expect(201);
    // A manifest with no layers at all.
    let empty = image_manifest((&digest(&img.config), img.config.len()), &[]);
    r.req("PUT", "/v2/e/manifests/nolayers", &[ct], &empty)
        .expect(201);
}

#[test]
fn catalog_and_tags_paginate() {
    let (_d, r) = start();
    let img = TestImage::new("p");
    for repo in ["r1", "r2", "r3", "ns/r4", "ns/r5"] {
        img.push(&r, repo, "latest");
    }
    for tag in ["b", "a", "e", "c", "d"] {
        r.req(
            "PUT",
            &format!("/v2/r1/manifests/{tag}"),
            &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            &img.manifest,
        )
        .expect(201);
    }
    let all = r.req("GET", "/v2/_catalog", &[], b"");
    all.expect(200);
    assert_eq!(
        all.json()["repositories"],
        serde_json::json!(["ns/r4", "ns/r5", "r1", "r2", "r3"])
    );
    assert!(all.header("Link").is_none());
    let p1 = r.req("GET", "/v2/_catalog?n=2", &[], b"");
    assert_eq!(
        p1.json()["repositories"],
        serde_json::json!(["ns/r4", "ns/r5"])
    );
    let link = p1.header("Link").unwrap().to_string();
    assert_eq!(link, "</v2/_catalog?last=ns/r5&n=2>; rel=\"next\"");
    let next = link.trim_start_matches('<').split('>').next().unwrap();
    let p2 = r.req("GET", next, &[], b"");
    assert_eq!(p2.json()["repositories"], serde_json::json!(["r1", "r2"]));
    let p3 = r.req("GET", "/v2/_catalog?n=2&last=r2", &[], b"");
    assert_eq!(p3.json()["repositories"], serde_json::json!(["r3"]));
    assert!(p3.header("Link").is_none());
    r.req("GET", "/v2/_catalog?n=x", &[], b"")
        .expect_error(400, "PAGINATION_NUMBER_INVALID");

    let tags = r.req("GET", "/v2/r1/tags/list", &[], b"");
    assert_eq!(
        tags.json(),
        serde_json::json!({"name": "r1", "tags": ["a", "b", "c", "d", "e", "latest"]})
    );
    let t1 = r.req("GET", "/v2/r1/tags/list?n=2&last=b", &[], b"");
    assert_eq!(t1.json()["tags"], serde_json::json!(["c", "d"]));
    assert_eq!(
        t1.header("Link"),
        Some("</v2/r1/tags/list?last=d&n=2>; rel=\"next\"")
    );
    let t0 = r.req("GET", "/v2/r1/tags/list?n=0", &[], b"");
    assert_eq!(t0.json()["tags"], serde_json::json!([]));
    r.req("GET", "/v2/nothere/tags/list", &[], b"")
        .expect_error(404, "NAME_UNKNOWN");
}

#[test]
fn deletes() {
    let (_d, r) = start();
    let img = TestImage::new("del");
    let md = img.push(&r, "d", "v1");
    let ct = ("Content-Type", "application/vnd.oci.image.manifest.v1+json");
    r.req("PUT", "/v2/d/manifests/v2", &[ct], &img.manifest)
        .expect(201);
    // Tag delete keeps the manifest and the other tag.
    r.req("DELETE", "/v2/d/manifests/v1", &[], b"").expect(202);
    r.req("GET", "/v2/d/manifests/v1", &[], b"").expect(404);
    r.req("GET", &format!("/v2/d/manifests/{md}"), &[], b"")
        .expect(200);
    assert_eq!(
        r.req("GET", "/v2/d/tags/list", &[], b"").json()["tags"],
        serde_json::json!(["v2"])
    );
    // Digest delete takes its tags along.
    r.req("DELETE", &format!("/v2/d/manifests/{md}"), &[], b"")
        .expect(202);
    r.req("GET", &format!("/v2/d/manifests/{md}"), &[], b"")
        .expect(404);
    r.req("GET", "/v2/d/manifests/v2", &[], b"").expect(404);
    assert_eq!(
        r.req("GET", "/v2/d/tags/list", &[], b"").json()["tags"],
        serde_json::json!([])
    );
    r.req("DELETE", &format!("/v2/d/manifests/{md}"), &[], b"")
        .expect_error(404, "MANIFEST_UNKNOWN");
    // Blob delete.
    let ld = digest(&img.layer);
    r.req("DELETE", &format!("/v2/d/blobs/{ld}"), &[], b"")
        .expect(202);
    r.req("HEAD", &format!("/v2/d/blobs/{ld}"), &[], b"")
        .expect(404);
    r.req("DELETE", &format!("/v2/d/blobs/{ld}"), &[], b"")
        .expect_error(404, "BLOB_UNKNOWN");
}

#[test]
fn malformed_names_and_path_tricks() {
    let (dir, r) = start();
    for path in [
        "/v2/../../etc/blobs/uploads/",
        "/v2/a/../../b/blobs/uploads/",
        "/v2/%2e%2e/x/blobs/uploads/",
        "/v2/UPPER/blobs/uploads/",
        "/v2/a//b/blobs/uploads/",
        "/v2/_manifests/blobs/uploads/",
        "/v2/-a/blobs/uploads/",
    ] {
        let resp = r.req("POST", path, &[], b"");
        resp.expect_error(400, "NAME_INVALID");
    }
    let long = format!("/v2/{}/blobs/uploads/", "a".repeat(256));
    r.req("POST", &long, &[], b"")
        .expect_error(400, "NAME_INVALID");
    r.req("GET", "/v2/../x/tags/list", &[], b"")
        .expect_error(400, "NAME_INVALID");
    // Nothing was created anywhere, inside or beside the data directory.
    let parent: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(parent, ["data"]);
    assert_eq!(files_under(&dir.path().join("data")), ["lock"]);
}

#[test]
fn htpasswd_auth() {
    let dir = tempdir();
    let hash = bcrypt::hash("s3cret", 5).unwrap();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).unwrap();
    let r = Registry::start(
        &dir.path().join("data"),
        &["--htpasswd", htpasswd.to_str().unwrap()],
    );
    let resp = r.req("GET", "/v2/", &[], b"");
    resp.expect_error(401, "UNAUTHORIZED");
    assert_eq!(
        resp.header("WWW-Authenticate"),
        Some("Basic realm=\"amber-registry\"")
    );
    r.req("POST", "/v2/a/blobs/uploads/", &[], b"").expect(401);
    // alice:wrong
    r.req(
        "GET",
        "/v2/",
        &[("Authorization", "Basic YWxpY2U6d3Jvbmc=")],
        b"",
    )
    .expect(401);
    // bob:s3cret
    r.req(
        "GET",
        "/v2/",
        &[("Authorization", "Basic Ym9iOnMzY3JldA==")],
        b"",
    )
    .expect(401);
    // alice:s3cret
    let ok = [("Authorization", "Basic YWxpY2U6czNjcmV0")];
    r.req("GET", "/v2/", &ok, b"").expect(200);
    let d = digest(b"authed");
    r.req(
        "POST",
        &format!("/v2/a/blobs/uploads/?digest={d}"),
        &ok,
        b"authed",
    )
    .expect(201);
    r.req("GET", &format!("/v2/a/blobs/{d}"), &[], b"")
        .expect(401);
}

#[test]
fn token_auth() {
    let dir = tempdir();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "# ci\ntok-one\ntok-two\n").unwrap();
    let r = Registry::start(
        &dir.path().join("data"),
        &["--token-file", tokens.to_str().unwrap()],
    );
    let resp = r.req("GET", "/v2/", &[], b"");
    resp.expect_error(401, "UNAUTHORIZED");
    let challenge = resp.header("WWW-Authenticate").unwrap();
    assert!(
        challenge.starts_with(&format!("Bearer realm=\"http://{}/token\"", r.host())),
        "{challenge}"
    );
    r.req("GET", "/v2/", &[("Authorization", "Bearer tok-two")], b"")
        .expect(200);
    r.req("GET", "/v2/", &[("Authorization", "Bearer tok-three")], b"")
        .expect(401);
    // Docker's token flow: Basic with the token as password → bearer token.
    r.req("GET", "/token", &[], b"").expect(401);
    // user:tok-one
    let t = r.req(
        "GET",
        "/token?service=amber-registry&scope=repository:a:pull",
        &[("Authorization", "Basic dXNlcjp0b2stb25l")],
        b"",
    );
    t.expect(200);
    assert_eq!(t.json()["token"], "tok-one");
    // user:nope
    r.req(
        "GET",
        "/token",
        &[("Authorization", "Basic dXNlcjpub3Bl")],
        b"",
    )
    .expect(401);
}

#[test]
fn read_only_refuses_writes() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let img = TestImage::new("ro");
    let md = {
        let r = Registry::start(&data, &[]);
        img.push(&r, "ro", "v1")
    };
    let r = Registry::start(&data, &["--read-only"]);
    r.req("GET", "/v2/ro/manifests/v1", &[], b"").expect(200);
    r.req(
        "GET",
        &format!("/v2/ro/blobs/{}", digest(&img.layer)),
        &[],
        b"",
    )
    .expect(200);
    r.req("POST", "/v2/ro/blobs/uploads/", &[], b"")
        .expect_error(405, "UNSUPPORTED");
    r.req("PUT", "/v2/ro/manifests/v2", &[], &img.manifest)
        .expect_error(405, "UNSUPPORTED");
    r.req("DELETE", &format!("/v2/ro/manifests/{md}"), &[], b"")
        .expect_error(405, "UNSUPPORTED");
    r.req(
        "DELETE",
        &format!("/v2/ro/blobs/{}", digest(&img.layer)),
        &[],
        b"",
    )
    .expect_error(405, "UNSUPPORTED");
}

fn amber(args: &[&str]) -> std::process::Output {
    std::process::Command::new(registry_common::amber_bin())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn gc_removes_only_unreferenced_blobs() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let keep = TestImage::new("keep");
    let gone = TestImage::new("gone");
    let (orphan, deleted_layer) = {
        let mut r = Registry::start(&data, &[]);
        keep.push(&r, "k", "v1");
        let md = gone.push(&r, "g", "v1");
        r.req("DELETE", &format!("/v2/g/manifests/{md}"), &[], b"")
            .expect(202);
        let orphan = push_blob(&r, "k", b"orphan blob");
        let upload = r.req("POST", "/v2/k/blobs/uploads/", &[], b"");
        r.req(
            "PATCH",
            upload.header("Location").unwrap(),
            &[],
            b"abandoned",
        )
        .expect(202);
        // Neither gc nor a second server while a writable server runs.
        let refused = amber(&["registry", "gc", "--data", data.to_str().unwrap()]);
        assert!(!refused.status.success());
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(
            err.contains("is in use") && err.contains("--read-only"),
            "{err}"
        );
        let second = amber(&[
            "registry",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--data",
            data.to_str().unwrap(),
        ]);
        assert!(!second.status.success());
        assert!(String::from_utf8_lossy(&second.stderr).contains("is in use"));
        assert!(r.stop(), "clean stop on SIGTERM:\n{}", r.log());
        (orphan, digest(&gone.layer))
    };
    let data_s = data.to_str().unwrap();
    let dry = amber(&[
        "registry",
        "gc",
        "--data",
        data_s,
        "--dry-run",
        "--json",
        "--upload-max-age-hours",
        "0",
    ]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    let removed: Vec<String> = report["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(report["uploads_removed"], 1, "{report}");
    assert_eq!(report["upload_bytes_freed"], 9, "{report}");
    // The deleted manifest, its config and layer, and the orphan.
    assert_eq!(removed.len(), 4, "{report}");
    for d in [
        &orphan,
        &deleted_layer,
        &digest(&gone.config),
        &digest(&gone.manifest),
    ] {
        assert!(removed.contains(d), "{d} in {report}");
    }
    assert!(
        data.join("blobs/sha256").join(&orphan[7..]).exists(),
        "dry run removed nothing"
    );
    // Beside a read-only server, gc runs.
    let ro = Registry::start(&data, &["--read-only"]);
    let real = amber(&["registry", "gc", "--data", data_s]);
    drop(ro);
    assert!(real.status.success());
    let text = String::from_utf8_lossy(&real.stdout);
    let freed = gone.layer.len() + gone.config.len() + gone.manifest.len() + b"orphan blob".len();
    assert!(
        text.contains("Removed 4 blobs") && text.contains(&format!("({freed} bytes) freed")),
        "{text}"
    );
    assert!(!data.join("blobs/sha256").join(&orphan[7..]).exists());
    // What is still referenced still serves.
    let r = Registry::start(&data, &[]);
    r.req("GET", "/v2/k/manifests/v1", &[], b"").expect(200);
    assert_eq!(
        r.req(
            "GET",
            &format!("/v2/k/blobs/{}", digest(&keep.layer)),
            &[],
            b""
        )
        .body,
        keep.layer
    );
    r.req("HEAD", &format!("/v2/k/blobs/{orphan}"), &[], b"")
        .expect(404);
}

#[test]
fn killed_mid_upload_serves_no_partial_blob_and_resumes() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let blob: Vec<u8> = (0..3_000_000u32).map(|i| (i % 241) as u8).collect();
    let d = digest(&blob);
    let (loc, mono_hang, chunk_hang);
    {
        let mut r = Registry::start(&data, &[]);
        loc = r
            .req("POST", "/v2/k9/blobs/uploads/", &[], b"")
            .header("Location")
            .unwrap()
            .to_string();
        // A chunk in flight and a monolithic upload in flight, then SIGKILL.
        // More than the server's 1 MiB write buffer, so some of it reached the file.
        chunk_hang = hang(r.port, "PATCH", &loc, blob.len(), &blob[..1_500_000]);
        mono_hang = hang(
            r.port,
            "POST",
            &format!("/v2/k9/blobs/uploads/?digest={d}"),
            blob.len(),
            &blob[..1_500_000],
        );
        wait_for_upload(&data, &loc, 1);
        r.kill9();
    }
    drop((chunk_hang, mono_hang));
    let r = Registry::start(&data, &[]);
    r.req("HEAD", &format!("/v2/k9/blobs/{d}"), &[], b"")
        .expect(404);
    r.req("GET", &format!("/v2/k9/blobs/{d}"), &[], b"")
        .expect_error(404, "BLOB_UNKNOWN");
    assert!(files_under(&data.join("blobs")).is_empty());
    assert!(files_under(&data.join("tmp")).is_empty());
    // The chunked upload survived: continue where it stands.
    let st = r.req("GET", &loc, &[], b"");
    st.expect(204);
    let have: usize = st.header("Range").unwrap()[2..].parse::<usize>().unwrap() + 1;
    assert!((1..=1_500_000).contains(&have), "{have}");
    let cr = format!("{have}-{}", blob.len() - 1);
    r.req("PATCH", &loc, &[("Content-Range", &cr)], &blob[have..])
        .expect(202);
    r.req("PUT", &format!("{loc}?digest={d}"), &[], b"")
        .expect(201);
    assert_eq!(
        r.req("GET", &format!("/v2/k9/blobs/{d}"), &[], b"").body,
        blob
    );
    // And a fresh upload of the same blob just works.
    push_blob(&r, "k9b", &blob);
}

#[test]
fn sigterm_and_sigint_stop_cleanly() {
    let (_d, mut r) = start();
    r.req("GET", "/v2/", &[], b"").expect(200);
    assert!(r.stop(), "{}", r.log());
    assert!(r.log().contains("shutting down"));

    let (_d, mut r) = start();
    let mut child = r.child.take().unwrap();
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {}", r.log());
}

#[test]
fn referrers_list_manifests_by_subject() {
    let (_d, r) = start();
    let img = TestImage::new("subject");
    let md = img.push(&r, "ref", "v1");
    let empty = push_blob(&r, "ref", b"{}");
    let artifact = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": img.manifest.len()},
        "annotations": {"org.example": "yes"},
    }))
    .unwrap();
    let ad = digest(&artifact);
    let ct = ("Content-Type", "application/vnd.oci.image.manifest.v1+json");
    let put = r.req("PUT", &format!("/v2/ref/manifests/{ad}"), &[ct], &artifact);
    put.expect(201);
    assert_eq!(put.header("OCI-Subject"), Some(md.as_str()));

    let list = r.req("GET", &format!("/v2/ref/referrers/{md}"), &[], b"");
    list.expect(200);
    assert_eq!(
        list.header("Content-Type"),
        Some("application/vnd.oci.image.index.v1+json")
    );
    let v = list.json();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["manifests"][0]["digest"], ad);
    assert_eq!(
        v["manifests"][0]["artifactType"],
        "application/vnd.example.sig"
    );
    assert_eq!(v["manifests"][0]["annotations"]["org.example"], "yes");
    let filtered = r.req(
        "GET",
        &format!("/v2/ref/referrers/{md}?artifactType=other/type"),
        &[],
        b"",
    );
    assert_eq!(filtered.header("OCI-Filters-Applied"), Some("artifactType"));
    assert_eq!(filtered.json()["manifests"], serde_json::json!([]));
    let none = r.req(
        "GET",
        &format!("/v2/ref/referrers/{}", digest(b"nothing")),
        &[],
        b"",
    );
    none.expect(200);
    assert_eq!(none.json()["manifests"], serde_json::json!([]));
}

#[test]
fn bad_configuration_is_refused_at_start() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let file = |name: &str, content: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.to_str().unwrap().to_string()
    };
    let md5 = file("htpasswd", "bob:$apr1$abc$def\n");
    let empty = file("tokens", "# nothing\n");
    let junk = file("cert.pem", "not pem\n");
    let data_s = data.to_str().unwrap();
    for (args, expect) in [
        (vec!["--htpasswd", md5.as_str()], "htpasswd -B"),
        (vec!["--token-file", empty.as_str()], "no tokens"),
        (
            vec!["--htpasswd", "/nonexistent/htpasswd"],
            "failed to read /nonexistent/htpasswd",
        ),
        (
            vec!["--tls-cert", junk.as_str(), "--tls-key", junk.as_str()],
            "failed to load certificate",
        ),
    ] {
        let mut all = vec![
            "registry",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--data",
            data_s,
        ];
        all.extend(args);
        let out = amber(&all);
        assert_eq!(out.status.code(), Some(1), "{all:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("Error: ") && err.contains(expect),
            "{all:?}: {err}"
        );
    }
}

#[test]
fn concurrent_pushes_and_a_reader_that_disconnects() {
    let (_d, r) = start();
    let blob: Vec<u8> = (0..4_000_000u32).map(|i| (i % 239) as u8).collect();
    let d = digest(&blob);
    std::thread::scope(|s| {
        for i in 0..6 {
            let (r, blob) = (&r, &blob);
            s.spawn(move || push_blob(r, &format!("conc/r{}", i % 3), blob));
        }
    });
    for i in 0..3 {
        assert_eq!(
            r.req("GET", &format!("/v2/conc/r{i}/blobs/{d}"), &[], b"")
                .body,
            blob
        );
    }
    // A reader that goes away mid-blob does not disturb the server.
    for _ in 0..5 {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(("127.0.0.1", r.port)).unwrap();
        write!(c, "GET /v2/conc/r0/blobs/{d} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = [0u8; 1000];
        let _ = c.read(&mut buf).unwrap();
    }
    assert_eq!(
        r.req("GET", &format!("/v2/conc/r1/blobs/{d}"), &[], b"")
            .body,
        blob
    );
}
