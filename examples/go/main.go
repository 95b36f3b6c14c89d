// weightinit-client: weightinit from Go, standard library only. It asks a running service for the
// weights of a request document as JSON (the report with every tensor's sha256), as safetensors
// and (the first tensor) as .npy; decodes both binary formats itself; prints every tensor's name,
// dtype, shape and first values; checks each tensor's sha256, dtype and shape against the report
// and each body against its Repr-Digest; and revalidates the safetensors with If-None-Match,
// which must answer 304.
//
//	weightinit-client [--url URL] [--request REQUEST.json] [--show N] [--dump OUT.json]
//
// Exit status: 0 all good, 1 a mismatch, an HTTP error (the problem's detail is printed) or an
// unreadable response, 2 bad usage.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

const usage = "usage: weightinit-client [--url URL] [--request REQUEST.json] [--show N] [--dump OUT.json]"

// example is the default request: a small MLP (override with --request FILE).
const example = `{"architecture": {"layers": [
  {"type": "dense", "name": "fc1", "in_features": 16, "out_features": 8, "activation": "relu"},
  {"type": "dense", "name": "out", "in_features": 8, "out_features": 4, "activation": "tanh"}]},
 "scheme": "auto", "seed": 42, "dtype": "float32"}`

// reported is what the JSON report says about one tensor.
type reported struct {
	Name   string   `json:"name"`
	DType  string   `json:"dtype"`
	Shape  []uint64 `json:"shape"`
	SHA256 string   `json:"sha256"`
}

// engineInfo is the report's (and the safetensors metadata's) `engine`.
type engineInfo struct{ Name, Version, Numpy string }

type client struct {
	http *http.Client
	url  string
	show int
	ok   bool
}

func main() {
	flags := flag.NewFlagSet("weightinit-client", flag.ContinueOnError)
	flags.SetOutput(io.Discard) // the usage line below says it all
	url := flags.String("url", envOr("WEIGHTINIT_URL", "http://127.0.0.1:8000"), "the service")
	requestPath := flags.String("request", "", "a request document (default: a small MLP)")
	show := flags.Uint("show", 6, "values to print per tensor")
	dump := flags.String("dump", "", "write every decoded tensor's bits here (JSON)")
	doc, err := func() (map[string]interface{}, error) {
		if err := flags.Parse(os.Args[1:]); err != nil {
			return nil, err
		}
		if flags.NArg() > 0 {
			return nil, fmt.Errorf("unexpected argument %s", flags.Arg(0))
		}
		if !strings.HasPrefix(*url, "http://") && !strings.HasPrefix(*url, "https://") {
			return nil, fmt.Errorf("--url must be an http:// or https:// URL, not %s", *url)
		}
		return requestDocument(*requestPath)
	}()
	if errors.Is(err, flag.ErrHelp) {
		fmt.Println(usage)
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "weightinit client: %v\n%s\n", err, usage)
		os.Exit(2)
	}
	c := &client{http: newHTTPClient(), url: *url, show: int(*show), ok: true}
	if err := c.run(doc, *dump); err != nil {
		fmt.Fprintf(os.Stderr, "weightinit client: %v\n", err)
		os.Exit(1)
	}
	if !c.ok {
		os.Exit(1)
	}
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// requestDocument reads the document (a file, else the example) without `format`: the Accept
// header picks each format below. Numbers stay json.Number, so a 64-bit seed is sent back exactly.
func requestDocument(path string) (map[string]interface{}, error) {
	text, where := []byte(example), "the example request"
	if path != "" {
		var err error
		if text, err = os.ReadFile(path); err != nil {
			return nil, err
		}
		where = path
	}
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var doc map[string]interface{}
	if err := dec.Decode(&doc); err != nil || doc == nil {
		return nil, fmt.Errorf("%s: not a JSON object (%v)", where, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: text after the JSON object", where)
	}
	delete(doc, "format")
	return doc, nil
}

func (c *client) run(doc map[string]interface{}, dumpPath string) error {
	body, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	res, err := post(c.http, c.url, "/v1/weights", body, "application/json", "")
	if err != nil {
		return err
	}
	var report struct {
		Seed    json.Number `json:"seed"`
		Engine  engineInfo  `json:"engine"`
		Tensors []reported  `json:"tensors"`
	}
	if err := json.Unmarshal(res.Body, &report); err != nil || len(report.Tensors) == 0 {
		return fmt.Errorf("the JSON report has no \"tensors\" list (%v)", err)
	}
	fmt.Printf("report: %d tensors, seed %s, %s %s (numpy %s), %s\n", len(report.Tensors), report.Seed,
		report.Engine.Name, report.Engine.Version, report.Engine.Numpy, c.digest(res))

	st, err := post(c.http, c.url, "/v1/weights", body, "application/vnd.safetensors", "")
	if err != nil {
		return err
	}
	file, err := readSafetensors(st.Body)
	if err != nil {
		return fmt.Errorf("safetensors: %v", err)
	}
	fmt.Printf("safetensors: %d tensors, %d bytes, %s%s\n", len(file.Tensors), len(st.Body), c.digest(st),
		describe(file.Metadata["weightinit"]))
	c.print(file.Tensors, report.Tensors)
	for _, r := range report.Tensors {
		if find(file.Tensors, r.Name) == nil {
			c.mismatch("", r.Name+" is in the report but not in the safetensors file")
		}
	}

	// A .npy holds one tensor: ask for the report's first one alone.
	first := report.Tensors[0].Name
	one := map[string]interface{}{"tensors": []string{first}}
	for k, v := range doc {
		if k != "tensors" {
			one[k] = v
		}
	}
	oneBody, err := json.Marshal(one)
	if err != nil {
		return err
	}
	npy, err := post(c.http, c.url, "/v1/weights", oneBody, "application/x-npy", "")
	if err != nil {
		return err
	}
	t, err := readNpy(first, npy.Body)
	if err != nil {
		return fmt.Errorf("npy: %v", err)
	}
	fmt.Printf("npy: %s, %d bytes, %s\n", first, len(npy.Body), c.digest(npy))
	c.print([]*Tensor{t}, report.Tensors)

	if err := c.revalidate(body, st.ETag); err != nil {
		return err
	}

	if dumpPath != "" {
		sums := map[string]string{}
		for _, r := range report.Tensors {
			sums[r.Name] = r.SHA256
		}
		sumsJSON, _ := json.Marshal(sums) // a map of strings always marshals
		entries := make([]string, len(file.Tensors))
		for i, x := range file.Tensors {
			entries[i] = x.DumpJSON()
		}
		text := fmt.Sprintf("{\"reported_sha256\":%s,\"formats\":{\"safetensors\":[%s],\"npy\":[%s]}}\n",
			sumsJSON, strings.Join(entries, ",\n"), t.DumpJSON())
		if err := os.WriteFile(dumpPath, []byte(text), 0o644); err != nil {
			return err
		}
	}
	if c.ok {
		fmt.Println("all tensors match the sha256, dtype and shape of the JSON report")
	} else {
		fmt.Println("some tensors do not match the JSON report")
	}
	return nil
}

// revalidate sends the same request with If-None-Match: the ETag. Nothing changed: 304, no body.
func (c *client) revalidate(body []byte, etag string) error {
	if etag == "" {
		fmt.Println("no ETag on the safetensors response: nothing to revalidate")
		return nil
	}
	again, err := post(c.http, c.url, "/v1/weights", body, "application/vnd.safetensors", etag)
	if err != nil {
		return err
	}
	if again.Status == http.StatusNotModified && len(again.Body) == 0 {
		fmt.Printf("revalidated: If-None-Match %s -> 304 Not Modified, no body\n", etag)
	} else {
		c.mismatch("", fmt.Sprintf("If-None-Match %s -> HTTP %d with %d bytes, expected 304 and no body",
			etag, again.Status, len(again.Body)))
	}
	return nil
}

// print writes every tensor's line, then whether it agrees with the report.
func (c *client) print(tensors []*Tensor, report []reported) {
	width := 1
	for _, t := range tensors {
		if len(t.Name) > width {
			width = len(t.Name)
		}
	}
	pad := strings.Repeat(" ", width)
	for _, t := range tensors {
		shown := c.show
		if t.Len() < shown {
			shown = t.Len()
		}
		head := make([]string, shown)
		for i := range head {
			head[i] = t.Display(i)
		}
		more := ""
		if t.Len() > shown {
			more = ", ..."
		}
		digest := t.SHA256()
		fmt.Printf("  %-*s  %-4s  %-16s  sha256 %s  [%s%s]\n", width, t.Name, t.DType.Code(), t.ShapeText(),
			digest[:16], strings.Join(head, ", "), more)
		problems := check(t, digest, report)
		if len(problems) == 0 {
			fmt.Printf("  %s  sha256 matches the report\n", pad)
		}
		for _, p := range problems {
			c.mismatch(pad+"  ", p)
		}
	}
}

// check lists the problems of one tensor against the report (none when it agrees).
func check(t *Tensor, digest string, report []reported) []string {
	var r *reported
	for i := range report {
		if report[i].Name == t.Name {
			r = &report[i]
		}
	}
	if r == nil {
		return []string{t.Name + " is not in the report"}
	}
	var problems []string
	if r.SHA256 != digest {
		problems = append(problems, fmt.Sprintf("sha256 %s but the report says %s", digest, r.SHA256))
	}
	if d, ok := dtypeOf(r.DType); !ok || d != t.DType {
		problems = append(problems, fmt.Sprintf("dtype %s but the report says %s", t.DType.Code(), r.DType))
	}
	if fmt.Sprint(r.Shape) != fmt.Sprint(t.Shape) { // "[2 3]"; nil and empty both print "[]"
		problems = append(problems, fmt.Sprintf("shape %s but the report says %v", t.ShapeText(), r.Shape))
	}
	return problems
}

func find(tensors []*Tensor, name string) *Tensor {
	for _, t := range tensors {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func (c *client) mismatch(indent, text string) {
	c.ok = false
	fmt.Printf("  %sMISMATCH: %s\n", indent, text)
}

func (c *client) digest(r *Response) string {
	switch reprDigest(r) {
	case DigestMatches:
		return "Repr-Digest matches"
	case DigestDiffers:
		c.ok = false
		return "MISMATCH: Repr-Digest " + r.ReprDigest + " is not the body's sha-256"
	}
	return "no Repr-Digest"
}

// describe is "; seed S, scheme X, weightinit V (numpy N)" from the safetensors' __metadata__.weightinit.
func describe(metadata string) string {
	if metadata == "" {
		return ""
	}
	var meta struct {
		Seed   json.Number     `json:"seed"`
		Scheme json.RawMessage `json:"scheme"`
		Engine engineInfo      `json:"engine"`
	}
	if err := json.Unmarshal([]byte(metadata), &meta); err != nil {
		return fmt.Sprintf("; __metadata__.weightinit is not JSON: %v", err)
	}
	var scheme struct{ Name string }
	if json.Unmarshal(meta.Scheme, &scheme) != nil { // the scheme is an object, or just its name
		_ = json.Unmarshal(meta.Scheme, &scheme.Name)
	}
	return fmt.Sprintf("; seed %s, scheme %s, %s %s (numpy %s)", meta.Seed, scheme.Name, meta.Engine.Name,
		meta.Engine.Version, meta.Engine.Numpy)
}
