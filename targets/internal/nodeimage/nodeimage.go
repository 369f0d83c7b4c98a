// Package nodeimage builds, or finds by content hash, the container image
// that serves one Node.js function, and names the labels that mark
// everything the harness creates in a Docker Engine.
//
// An image holds the shared server (server.js: Node's own http module, port
// 8080, health paths /_/health and /_/ready), the one-shot form of it
// (stdin.js: one request on stdin, the answer on stdout), the ABI helpers every Node
// function loads (fnio.js, the counterpart of functions/internal/fnio),
// and the function's files from
// functions/<name>/ (index.js and any other .js/.json there). It comes from
// one of two sources:
//
//   - "registry": a Dockerfile build FROM an official Node image (the
//     Dockerfile in this package), when the base image is present or can be
//     pulled;
//   - "local-node": a root filesystem assembled from the local `node`
//     binary and the shared libraries `ldd` lists, imported with
//     ImageImport. This needs no registry at all.
//
// Source "auto" takes the registry when it is reachable and local-node
// otherwise, and the returned Image says which. Images are tagged
// academemes/node-<function>:<hash> and labelled with the content hash, so a
// second Build with the same inputs finds the image instead of building it.
// Images are kept between runs as a cache; `harness clean` removes them.
package nodeimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"

	"github.com/academemes/harness/targets"
)

// Label keys put on every container and image the harness creates, so that
// `harness clean` finds what a crash or Ctrl-C left behind.
const (
	// LabelHarness marks an object as the harness's; its value is "1".
	LabelHarness = "io.academemes.harness"
	// LabelRun names the run that created the object.
	LabelRun = "io.academemes.harness.run"
	// LabelFunction names the function an image or container serves.
	LabelFunction = "io.academemes.harness.function"
	// LabelTarget names the target (scenario name) a container belongs to.
	LabelTarget = "io.academemes.harness.target"
	// LabelContent is an image's content hash (see Image.ContentHash).
	LabelContent = "io.academemes.harness.content"
	// LabelSource is how an image was made: "registry" or "local-node".
	LabelSource = "io.academemes.harness.image-source"
)

// Facts about the server inside every image.
const (
	// Port is the port the function server listens on in the container.
	Port = 8080
	// HealthPath answers 200 once the server accepts requests.
	HealthPath = "/_/health"
	// ReadyPath is the same as HealthPath (of-watchdog has both).
	ReadyPath = "/_/ready"
	// StdinScript runs the function once on the request in its
	// environment and stdin and writes the answer to stdout in the
	// function ABI's CGI form (the original study's `docker run --rm -i`).
	StdinScript = "/app/stdin.js"
	// StdinReady is what StdinScript writes to stderr once node runs and
	// the function is loaded, before it reads stdin.
	StdinReady = "ready\n"
	// RefPrefix starts the repository name of every function image.
	RefPrefix = "academemes/node-"
	// DefaultBaseImage is the official Node image the registry source uses.
	DefaultBaseImage = "node:20-slim"
)

// Source says how an image was made.
type Source string

// Image sources.
const (
	SourceAuto      Source = "auto"       // registry when reachable, else local-node
	SourceRegistry  Source = "registry"   // Dockerfile FROM an official Node image
	SourceLocalNode Source = "local-node" // ImageImport of the local node binary + libraries
)

// Sources are the sources a scenario may choose (option image_source).
var Sources = []Source{SourceAuto, SourceRegistry, SourceLocalNode}

// Options says which image to build.
type Options struct {
	// Function is the function's name: the directory under Functions.
	Function string
	// Functions is the tree of function sources (the functions/ directory
	// or its embedded copy); Function/index.js must exist in it.
	Functions fs.FS
	// RunID goes into the LabelRun label of a newly built image.
	RunID string
	// Labels are extra labels for a newly built image.
	Labels map[string]string
	// Source picks how to make the image; "" is SourceAuto.
	Source Source
	// NodePath is the local node binary for SourceLocalNode; "" looks up
	// `node` on PATH.
	NodePath string
	// BaseImage is the FROM image of SourceRegistry; "" is DefaultBaseImage.
	BaseImage string
	// PullTimeout bounds the attempt to pull BaseImage when Source is auto
	// (0: 20 s). A registry that does not answer in time counts as absent.
	PullTimeout time.Duration
	// Logf reports progress; nil is quiet.
	Logf func(format string, args ...any)
}

// Image is a built or found function image.
type Image struct {
	ID          string `json:"id"`           // sha256:...
	Ref         string `json:"ref"`          // academemes/node-<function>:<hash12>
	Size        int64  `json:"size"`         // bytes, as the engine reports
	Source      Source `json:"source"`       // registry or local-node
	ContentHash string `json:"content_hash"` // sha256 of everything that went in
	NodeVersion string `json:"node_version,omitempty"`
	Reused      bool   `json:"reused"` // found by content hash, not built now
	// BuildTime is how long building took; 0 when reused.
	BuildTime time.Duration `json:"build_ns,omitempty"`
}

// Report returns the image's facts for a target's run.json report.
func (im Image) Report() map[string]any {
	return map[string]any{
		"image_id":       im.ID,
		"image_ref":      im.Ref,
		"image_size":     im.Size,
		"image_source":   string(im.Source),
		"image_hash":     im.ContentHash,
		"image_reused":   im.Reused,
		"node_version":   im.NodeVersion,
		"image_build_ns": im.BuildTime.Nanoseconds(),
	}
}

// HarnessLabels returns the labels for an object a run creates: the
// harness mark, the run id, this process as its owner (targets.Owner: the
// clean of another run leaves it alone while this one goes on) and the
// extra labels given.
func HarnessLabels(runID string, extra map[string]string) map[string]string {
	l := map[string]string{LabelHarness: "1"}
	if runID != "" {
		l[LabelRun] = runID
	}
	maps.Copy(l, targets.Self().Labels())
	maps.Copy(l, extra)
	return l
}

// HarnessFilter selects every object that carries the harness label, or,
// when runID is not "", only those of that run.
func HarnessFilter(runID string) client.Filters {
	f := make(client.Filters).Add("label", LabelHarness+"=1")
	if runID != "" {
		f.Add("label", LabelRun+"="+runID)
	}
	return f
}

// API is the part of the Docker client that Build uses.
type API interface {
	client.ImageAPIClient
	client.ImageBuildAPIClient
}

//go:embed server.js
var serverJS []byte

//go:embed fnio.js
var fnioJS []byte

//go:embed stdin.js
var stdinJS []byte

//go:embed Dockerfile
var dockerfile []byte

// Runtime returns the files every image has besides the function, by path
// under /app: server.js (the HTTP server), stdin.js (one request on stdin,
// the answer on stdout) and fnio.js (the ABI's input rules, which
// functions load as require('../fnio')). With the function's
// files under function/ they let a local node run a function as the image
// would (tests, the conformance check).
func Runtime() map[string][]byte {
	return map[string][]byte{"server.js": slices.Clone(serverJS), "stdin.js": slices.Clone(stdinJS), "fnio.js": slices.Clone(fnioJS)}
}

// buildVersion changes when the layout of an image changes, so old images
// are not found by hash any more.
const buildVersion = "nodeimage/3"

var (
	buildMu    sync.Mutex
	buildLocks = map[string]*sync.Mutex{}
)

// lockFor serialises builds of the same content inside this process.
func lockFor(hash string) *sync.Mutex {
	buildMu.Lock()
	defer buildMu.Unlock()
	m := buildLocks[hash]
	if m == nil {
		m = new(sync.Mutex)
		buildLocks[hash] = m
	}
	return m
}

// Build returns the image for opts.Function, building it when no image with
// the same content hash exists.
func Build(ctx context.Context, cli API, opts Options) (Image, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if opts.Function == "" || strings.ContainsAny(opts.Function, "/\\") {
		return Image{}, fmt.Errorf("nodeimage: bad function name %q", opts.Function)
	}
	if opts.Functions == nil {
		return Image{}, fmt.Errorf("nodeimage: no functions tree given for %q", opts.Function)
	}
	files, err := functionFiles(opts.Functions, opts.Function)
	if err != nil {
		return Image{}, err
	}
	base := opts.BaseImage
	if base == "" {
		base = DefaultBaseImage
	}
	src := opts.Source
	if src == "" {
		src = SourceAuto
	}
	if src == SourceAuto {
		src = chooseSource(ctx, cli, base, opts.PullTimeout, logf)
	}

	var (
		nodeFiles []hostFile
		nodeVer   string
	)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", buildVersion, src)
	hashBytes(h, "server.js", serverJS)
	hashBytes(h, "fnio.js", fnioJS)
	hashBytes(h, "stdin.js", stdinJS)
	for _, f := range files {
		hashBytes(h, "function/"+f.name, f.data)
	}
	switch src {
	case SourceRegistry:
		hashBytes(h, "Dockerfile", dockerfile)
		hashBytes(h, "base", []byte(base))
	case SourceLocalNode:
		nodeFiles, nodeVer, err = localNode(ctx, opts.NodePath)
		if err != nil {
			return Image{}, err
		}
		for _, f := range nodeFiles {
			sum, err := fileHash(f.host)
			if err != nil {
				return Image{}, err
			}
			hashBytes(h, f.image, []byte(sum))
		}
	default:
		return Image{}, fmt.Errorf("nodeimage: unknown source %q", src)
	}
	hash := hex.EncodeToString(h.Sum(nil))
	ref := RefPrefix + strings.ToLower(opts.Function) + ":" + hash[:12]

	mu := lockFor(hash)
	mu.Lock()
	defer mu.Unlock()

	if im, ok, err := find(ctx, cli, hash); err != nil {
		return Image{}, err
	} else if ok {
		im.Ref, im.Source, im.ContentHash, im.Reused = ref, src, hash, true
		if im.NodeVersion == "" {
			im.NodeVersion = nodeVer
		}
		logf("node image for %s: reusing %s (%s, %d bytes)", opts.Function, ref, src, im.Size)
		return im, nil
	}

	labels := HarnessLabels(opts.RunID, opts.Labels)
	labels[LabelFunction] = opts.Function
	labels[LabelContent] = hash
	labels[LabelSource] = string(src)
	if nodeVer != "" {
		labels["io.academemes.harness.node-version"] = nodeVer
	}
	t0 := time.Now()
	logf("node image for %s: building %s from %s", opts.Function, ref, src)
	switch src {
	case SourceRegistry:
		err = buildRegistry(ctx, cli, ref, base, files, labels)
	case SourceLocalNode:
		err = buildLocal(ctx, cli, ref, nodeFiles, files, labels)
	}
	if err != nil {
		return Image{}, fmt.Errorf("nodeimage: building %s (%s): %w", ref, src, err)
	}
	im, ok, err := find(ctx, cli, hash)
	if err != nil {
		return Image{}, err
	}
	if !ok {
		return Image{}, fmt.Errorf("nodeimage: built %s but no image carries label %s=%s", ref, LabelContent, hash)
	}
	im.Ref, im.Source, im.ContentHash = ref, src, hash
	im.BuildTime = time.Since(t0)
	if im.NodeVersion == "" {
		im.NodeVersion = nodeVer
	}
	logf("node image for %s: built %s in %s (%d bytes)", opts.Function, im.ID, im.BuildTime.Round(time.Millisecond), im.Size)
	return im, nil
}

// find looks for an image with the content hash label.
func find(ctx context.Context, cli API, hash string) (Image, bool, error) {
	res, err := cli.ImageList(ctx, client.ImageListOptions{
		Filters: make(client.Filters).Add("label", LabelContent+"="+hash),
	})
	if err != nil {
		return Image{}, false, fmt.Errorf("nodeimage: listing images: %w", err)
	}
	if len(res.Items) == 0 {
		return Image{}, false, nil
	}
	s := res.Items[0]
	return Image{ID: s.ID, Size: s.Size, NodeVersion: s.Labels["io.academemes.harness.node-version"]}, true, nil
}

type funcFile struct {
	name string // relative to the function's directory, slash-separated
	data []byte
}

// nodeExts are the files of a function directory that go into its image;
// Go sources and Wasm builds stay out.
var nodeExts = []string{".js", ".mjs", ".cjs", ".json"}

// functionFiles reads the Node files of one function, sorted by name.
func functionFiles(fsys fs.FS, name string) ([]funcFile, error) {
	if _, err := fs.Stat(fsys, path.Join(name, "index.js")); err != nil {
		return nil, fmt.Errorf("nodeimage: function %q has no Node version (%s/index.js): %w", name, name, err)
	}
	var out []funcFile
	err := fs.WalkDir(fsys, name, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != name && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) {
				return fs.SkipDir
			}
			return nil
		}
		if !slices.Contains(nodeExts, path.Ext(p)) || d.Name() == "go.mod" {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		out = append(out, funcFile{name: strings.TrimPrefix(p, name+"/"), data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("nodeimage: reading function %q: %w", name, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func hashBytes(h io.Writer, name string, data []byte) {
	fmt.Fprintf(h, "%s\x00%d\x00", name, len(data))
	h.Write(data)
}

// chooseSource decides auto: the registry when the base image is present
// or can be pulled in time, local-node otherwise. A machine without a
// registry answers the pull at once (DNS fails), so auto is quick there.
func chooseSource(ctx context.Context, cli API, base string, timeout time.Duration, logf func(string, ...any)) Source {
	if _, err := cli.ImageInspect(ctx, base); err == nil {
		return SourceRegistry
	}
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := cli.ImagePull(pctx, base, client.ImagePullOptions{})
	if err == nil {
		err = resp.Wait(pctx)
		resp.Close()
	}
	if err != nil {
		logf("node image: no registry (pulling %s: %v); assembling from the local node binary", base, err)
		return SourceLocalNode
	}
	return SourceRegistry
}

// buildRegistry builds the embedded Dockerfile with the function as context.
func buildRegistry(ctx context.Context, cli API, ref, base string, files []funcFile, labels map[string]string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("Dockerfile", dockerfile); err != nil {
		return err
	}
	if err := add("server.js", serverJS); err != nil {
		return err
	}
	if err := add("fnio.js", fnioJS); err != nil {
		return err
	}
	if err := add("stdin.js", stdinJS); err != nil {
		return err
	}
	for _, f := range files {
		if err := add("function/"+f.name, f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags:        []string{ref},
		Labels:      labels,
		Remove:      true,
		ForceRemove: true,
		BuildArgs:   map[string]*string{"BASE": &base},
	})
	if err != nil {
		return err
	}
	defer res.Body.Close()
	return drainStream(res.Body)
}

// drainStream reads a JSON message stream to its end and returns the first
// error message in it.
func drainStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading the engine's answer: %w", err)
		}
		if m.Error != nil {
			return errors.New(m.Error.Message)
		}
	}
}

// hostFile is a file copied from the host into the image.
type hostFile struct {
	host  string // path on the host (symlinks resolved)
	image string // path in the image
}

var lddLine = regexp.MustCompile(`(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)`)

// parseLdd returns the absolute library paths in ldd's output, in order.
func parseLdd(out string) []string {
	var libs []string
	for _, line := range strings.Split(out, "\n") {
		if m := lddLine.FindStringSubmatch(line); m != nil {
			libs = append(libs, m[1])
		}
	}
	return libs
}

var (
	nodeMu    sync.Mutex
	nodeCache = map[string]nodeInfo{}
)

type nodeInfo struct {
	files   []hostFile
	version string
}

// localNode lists the node binary and its libraries, and node's version.
func localNode(ctx context.Context, nodePath string) ([]hostFile, string, error) {
	if nodePath == "" {
		p, err := exec.LookPath("node")
		if err != nil {
			return nil, "", fmt.Errorf("nodeimage: no registry and no local node binary to assemble an image from: %w", err)
		}
		nodePath = p
	}
	nodeMu.Lock()
	defer nodeMu.Unlock()
	if ni, ok := nodeCache[nodePath]; ok {
		return ni.files, ni.version, nil
	}
	real, err := filepath.EvalSymlinks(nodePath)
	if err != nil {
		return nil, "", fmt.Errorf("nodeimage: node binary: %w", err)
	}
	out, err := exec.CommandContext(ctx, "ldd", real).Output()
	if err != nil {
		return nil, "", fmt.Errorf("nodeimage: ldd %s: %w", real, err)
	}
	files := []hostFile{{host: real, image: "/usr/bin/node"}}
	for _, lib := range parseLdd(string(out)) {
		r, err := filepath.EvalSymlinks(lib)
		if err != nil {
			return nil, "", fmt.Errorf("nodeimage: library %s of node: %w", lib, err)
		}
		files = append(files, hostFile{host: r, image: lib})
	}
	ver, err := exec.CommandContext(ctx, real, "--version").Output()
	if err != nil {
		return nil, "", fmt.Errorf("nodeimage: %s --version: %w", real, err)
	}
	ni := nodeInfo{files: files, version: strings.TrimSpace(string(ver))}
	nodeCache[nodePath] = ni
	return ni.files, ni.version, nil
}

var (
	hashMu    sync.Mutex
	hashCache = map[string]string{} // path|size|mtime -> sha256
)

// fileHash hashes a host file, memoised by path, size and mtime: the node
// binary is ~100 MB and tests build many images.
func fileHash(p string) (string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("nodeimage: %w", err)
	}
	key := p + "|" + strconv.FormatInt(st.Size(), 10) + "|" + strconv.FormatInt(st.ModTime().UnixNano(), 10)
	hashMu.Lock()
	defer hashMu.Unlock()
	if s, ok := hashCache[key]; ok {
		return s, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("nodeimage: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("nodeimage: hashing %s: %w", p, err)
	}
	s := hex.EncodeToString(h.Sum(nil))
	hashCache[key] = s
	return s, nil
}

// buildLocal assembles the root filesystem and imports it.
func buildLocal(ctx context.Context, cli API, ref string, node []hostFile, files []funcFile, labels map[string]string) error {
	var libDirs []string
	for _, f := range node[1:] {
		if d := path.Dir(f.image); !slices.Contains(libDirs, d) {
			libDirs = append(libDirs, d)
		}
	}
	changes := []string{
		`CMD ["/usr/bin/node","/app/server.js"]`,
		"WORKDIR /app",
		"ENV PORT=" + strconv.Itoa(Port),
		"ENV NODE_ENV=production",
		// No ld.so.cache in the image: tell the loader where the
		// libraries are, in case its built-in paths lack a multiarch dir.
		"ENV LD_LIBRARY_PATH=" + strings.Join(libDirs, ":"),
		"EXPOSE " + strconv.Itoa(Port) + "/tcp",
	}
	keys := slices.Sorted(maps.Keys(labels))
	for _, k := range keys {
		changes = append(changes, "LABEL "+k+"="+strconv.Quote(labels[k]))
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeRootfs(pw, node, files)) }()
	res, err := cli.ImageImport(ctx, client.ImageImportSource{Source: pr, SourceName: "-"}, ref, client.ImageImportOptions{
		Changes: changes,
		Message: "academemes harness: node function image from the local node binary",
	})
	if err != nil {
		pr.CloseWithError(err)
		return err
	}
	defer res.Close()
	return drainStream(res)
}

// writeRootfs writes the image's root filesystem as a tar stream.
func writeRootfs(w io.Writer, node []hostFile, files []funcFile) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	mkdir := func(d string) error {
		var chain []string
		for d = strings.Trim(d, "/"); d != "" && d != "." && !dirs[d]; d = path.Dir(d) {
			chain = append(chain, d)
			dirs[d] = true
		}
		for i := len(chain) - 1; i >= 0; i-- {
			if err := tw.WriteHeader(&tar.Header{Name: chain[i] + "/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0)}); err != nil {
				return err
			}
		}
		return nil
	}
	addData := func(name string, mode int64, data []byte) error {
		if err := mkdir(path.Dir(name)); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(name, "/"), Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	// Node writes nothing to /tmp by itself, but a function might.
	if err := tw.WriteHeader(&tar.Header{Name: "tmp/", Mode: 0o1777, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	dirs["tmp"] = true
	for _, f := range node {
		if err := mkdir(path.Dir(f.image)); err != nil {
			return err
		}
		fh, err := os.Open(f.host)
		if err != nil {
			return err
		}
		st, err := fh.Stat()
		if err != nil {
			fh.Close()
			return err
		}
		err = tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(f.image, "/"), Mode: 0o755, Size: st.Size(), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
		if err == nil {
			_, err = io.Copy(tw, fh)
		}
		fh.Close()
		if err != nil {
			return fmt.Errorf("adding %s: %w", f.host, err)
		}
	}
	if err := addData("/app/server.js", 0o644, serverJS); err != nil {
		return err
	}
	if err := addData("/app/fnio.js", 0o644, fnioJS); err != nil {
		return err
	}
	if err := addData("/app/stdin.js", 0o644, stdinJS); err != nil {
		return err
	}
	for _, f := range files {
		if err := addData("/app/function/"+f.name, 0o644, f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}
