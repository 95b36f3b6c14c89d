package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// userAgent is sent with every request: the server's access log tells this client's requests apart.
const userAgent = "weightinit-go-example/1.0"

// Response is a response's status, body, and the headers the client reads.
type Response struct {
	Status     int
	Body       []byte
	ETag       string
	ReprDigest string
}

// post sends `body` (a JSON document) to `path` asking for `accept`. A 200 must carry that media
// type; with `ifNoneMatch` (an ETag) a 304 is returned as it came. Any other status is an error
// naming the problem+json's title and detail.
func post(client *http.Client, base, path string, body []byte, accept, ifNoneMatch string) (*Response, error) {
	req, err := http.NewRequest(http.MethodPost, strings.TrimSuffix(base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", userAgent)
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("POST %s: reading the body: %v", path, err)
	}
	contentType := res.Header.Get("Content-Type")
	if res.StatusCode != http.StatusOK && !(res.StatusCode == http.StatusNotModified && ifNoneMatch != "") {
		return nil, fmt.Errorf("POST %s: HTTP %d %s", path, res.StatusCode, problem(contentType, data))
	}
	if media, _, _ := mime.ParseMediaType(contentType); res.StatusCode == http.StatusOK && media != accept {
		return nil, fmt.Errorf("POST %s: asked for %s, got %s", path, accept, contentType)
	}
	return &Response{res.StatusCode, data, res.Header.Get("ETag"), res.Header.Get("Repr-Digest")}, nil
}

// problem is "title: detail" of an RFC 9457 problem+json body (else the body's first 200 bytes).
func problem(contentType string, body []byte) string {
	if strings.Contains(contentType, "json") {
		var p struct{ Title, Detail string }
		if json.Unmarshal(body, &p) == nil {
			return p.Title + ": " + p.Detail
		}
	}
	if len(body) > 200 {
		return string(body[:200]) + "..."
	}
	return string(body)
}

// Digest is what a Repr-Digest header says about a body.
type Digest int

const (
	DigestAbsent Digest = iota
	DigestMatches
	DigestDiffers
)

// reprDigest checks RFC 9530's `Repr-Digest: sha-256=:<base64>:`, the sha-256 of the whole body
// (other algorithms in the list are ignored; without a sha-256 member it is absent).
func reprDigest(r *Response) Digest {
	for _, member := range strings.Split(r.ReprDigest, ",") {
		m := strings.TrimSpace(member)
		if strings.HasPrefix(m, "sha-256=:") && strings.HasSuffix(m, ":") && len(m) > 10 {
			want, err := base64.StdEncoding.DecodeString(m[9 : len(m)-1])
			sum := sha256.Sum256(r.Body)
			if err != nil || subtle.ConstantTimeCompare(want, sum[:]) != 1 {
				return DigestDiffers
			}
			return DigestMatches
		}
	}
	return DigestAbsent
}

func newHTTPClient() *http.Client {
	return &http.Client{Timeout: 120 * time.Second}
}
