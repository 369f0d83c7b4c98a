package nodeimage

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/moby/moby/client"

	"github.com/academemes/harness/targets"
)

func TestParseLdd(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want []string
	}{
		{"debian node", "\tlinux-vdso.so.1 (0x00007fb918f88000)\n" +
			"\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007fb918f72000)\n" +
			"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fb918a1e000)\n" +
			"\t/lib64/ld-linux-x86-64.so.2 (0x00007fb918f8a000)\n",
			[]string{"/lib/x86_64-linux-gnu/libdl.so.2", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}},
		{"static binary", "\tnot a dynamic executable\n", nil},
		{"missing library", "\tlibfoo.so.1 => not found\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseLdd(tc.out); !slices.Equal(got, tc.want) {
				t.Errorf("parseLdd = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFunctionFiles(t *testing.T) {
	fsys := fstest.MapFS{
		"echo/index.js":                {Data: []byte("module.exports = () => ({body: 'x'})\n")},
		"echo/lib/util.js":             {Data: []byte("// util\n")},
		"echo/package.json":            {Data: []byte("{}")},
		"echo/main.go":                 {Data: []byte("package main")},
		"echo/echo.wasm":               {Data: []byte("\x00asm")},
		"echo/node_modules/x/index.js": {Data: []byte("no")},
		"goonly/main.go":               {Data: []byte("package main")},
		"other/index.js":               {Data: []byte("other")},
	}
	tests := []struct {
		name    string
		fn      string
		want    []string
		wantErr bool
	}{
		{"node files only, sorted", "echo", []string{"index.js", "lib/util.js", "package.json"}, false},
		{"no index.js", "goonly", nil, true},
		{"absent function", "nope", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files, err := functionFiles(fsys, tc.fn)
			if (err != nil) != tc.wantErr {
				t.Fatalf("functionFiles(%q) error = %v, want error %v", tc.fn, err, tc.wantErr)
			}
			var names []string
			for _, f := range files {
				names = append(names, f.name)
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("files = %q, want %q", names, tc.want)
			}
		})
	}
}

// engine connects to the Docker Engine or skips (fails under CI=true).
func engine(t *testing.T) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := Connect(ctx)
	if err != nil {
		if !errors.Is(err, targets.ErrUnavailable) {
			t.Fatalf("Connect error does not wrap ErrUnavailable: %v", err)
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true needs a Docker Engine: %v", err)
		}
		t.Skipf("no Docker Engine reachable, skipping: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true needs a local node binary: %v", err)
		}
		t.Skipf("no local node binary to assemble function images from (install Node.js), skipping: %v", err)
	}
	return cli
}

func TestBuildLocalNodeAndReuse(t *testing.T) {
	cli := engine(t)
	ctx := context.Background()
	// A unique comment makes a unique content hash, so this test builds
	// for real and cannot pick up another test's image.
	stamp := time.Now().Format(time.RFC3339Nano)
	fsys := fstest.MapFS{
		"echo/index.js": {Data: []byte("// " + stamp + "\nmodule.exports = (r) => ({status: 200, body: r.path})\n")},
	}
	opts := Options{Function: "echo", Functions: fsys, RunID: "test-build", Source: SourceLocalNode,
		Labels: map[string]string{"io.academemes.harness.test": "1"}}
	im, err := Build(ctx, cli, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := cli.ImageRemove(context.Background(), im.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("removing test image: %v", err)
		}
	})
	if im.Reused || im.Source != SourceLocalNode || im.ID == "" || im.Size < 1<<20 || im.NodeVersion == "" {
		t.Errorf("first build: %+v", im)
	}
	insp, err := cli.ImageInspect(ctx, im.ID)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		LabelHarness: "1", LabelRun: "test-build", LabelFunction: "echo",
		LabelContent: im.ContentHash, LabelSource: "local-node", "io.academemes.harness.test": "1",
	} {
		if got := insp.Config.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	if !slices.Contains(insp.RepoTags, im.Ref) {
		t.Errorf("image tags %q lack %q", insp.RepoTags, im.Ref)
	}

	again, err := Build(ctx, cli, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Reused || again.ID != im.ID {
		t.Errorf("second build did not reuse: %+v vs %+v", again, im)
	}

	opts.Functions = fstest.MapFS{"echo/index.js": {Data: []byte("// changed " + stamp + "\nmodule.exports = () => ({})\n")}}
	changed, err := Build(ctx, cli, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cli.ImageRemove(context.Background(), changed.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	if changed.Reused || changed.ContentHash == im.ContentHash {
		t.Errorf("a changed function reused the old image: %+v", changed)
	}
}
