// Command mkimage builds a one-layer image from files on this machine and pushes
// it to a registry reached over plain HTTP (the local cluster's, on 127.0.0.1).
// Nothing is pulled from anywhere: every image starts from the empty image.
//
//	mkimage base  REF                   static base for ko: /etc/passwd with the
//	                                    non-root user 65532, /tmp, no shell
//	mkimage pause REF PAUSE-BINARY      the pod sandbox image
//	mkimage files REF ENTRYPOINT FILE...  the given files at their own paths
//	                                    (symlinks followed), user 1001, /data
//
// Layers are written with fixed times and modes, so the same inputs always give
// the same digest.
package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is one file or directory of a layer.
type entry struct {
	mode int64
	dir  bool
	data []byte
}

type layer map[string]entry

func (l layer) dir(p string, mode int64) {
	p = strings.Trim(p, "/")
	if p == "" || p == "." {
		return
	}
	l.dir(path.Dir(p), 0o755)
	if _, ok := l[p]; !ok {
		l[p] = entry{mode: mode, dir: true}
	}
}

func (l layer) file(p string, mode int64, data []byte) {
	p = strings.Trim(p, "/")
	l.dir(path.Dir(p), 0o755)
	l[p] = entry{mode: mode, data: data}
}

func (l layer) tar() ([]byte, error) {
	names := make([]string, 0, len(l))
	for n := range l {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, n := range names {
		e := l[n]
		h := &tar.Header{Name: n, Mode: e.mode, ModTime: epoch, Typeflag: tar.TypeReg, Size: int64(len(e.data))}
		if e.dir {
			h.Name, h.Typeflag, h.Size = n+"/", tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: mkimage base|pause|files REF ...")
	}
	kind, ref := args[0], args[1]
	l := layer{}
	cfg := v1.Config{Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}}
	switch kind {
	case "base":
		l.dir("tmp", 0o1777)
		l.dir("home/nonroot", 0o755)
		l.file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"))
		l.file("etc/group", 0o644, []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"))
		l.file("etc/nsswitch.conf", 0o644, []byte("hosts: files dns\n"))
		cfg.User = "65532"
	case "pause":
		if len(args) != 3 {
			return fmt.Errorf("usage: mkimage pause REF PAUSE-BINARY")
		}
		data, err := os.ReadFile(args[2])
		if err != nil {
			return err
		}
		l.file("pause", 0o755, data)
		cfg.Entrypoint = []string{"/pause"}
		cfg.User = "65535"
	case "files":
		if len(args) < 4 {
			return fmt.Errorf("usage: mkimage files REF ENTRYPOINT FILE...")
		}
		for _, f := range args[3:] {
			data, err := os.ReadFile(f) // follows symlinks
			if err != nil {
				return err
			}
			l.file(f, 0o755, data)
		}
		l.dir("tmp", 0o1777)
		l.dir("data", 0o1777)
		l.file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nredis:x:1001:1001:redis:/data:/sbin/nologin\n"))
		l.file("etc/group", 0o644, []byte("root:x:0:\nredis:x:1001:\n"))
		cfg.Entrypoint = []string{args[2]}
		cfg.User = "1001"
		cfg.WorkingDir = "/data"
	default:
		return fmt.Errorf("unknown image kind %q", kind)
	}
	return push(ref, l, cfg)
}

func push(refS string, l layer, cfg v1.Config) error {
	data, err := l.tar()
	if err != nil {
		return err
	}
	lay, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, lay)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = cfg
	cf.Created = v1.Time{Time: time.Unix(0, 0)}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	ref, err := name.ParseReference(refS, name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.Write(ref, img); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s@%s\n", refS, d)
	return nil
}
