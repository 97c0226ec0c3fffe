// Lists a tar with Go's archive/tar, the reader govc import.ova uses: one JSON object per
// member ({"name", "size", "format"}), with "sha256" of the contents when -hash is given.
package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	hash := flag.Bool("hash", false, "print the SHA-256 of each member's contents")
	flag.Parse()
	file, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer file.Close()
	reader := tar.NewReader(file)
	out := json.NewEncoder(os.Stdout)
	for {
		header, err := reader.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		entry := map[string]any{"name": header.Name, "size": header.Size, "format": header.Format.String()}
		if *hash {
			digest := sha256.New()
			if _, err := io.Copy(digest, reader); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			entry["sha256"] = hex.EncodeToString(digest.Sum(nil))
		}
		if err := out.Encode(entry); err != nil {
			os.Exit(1)
		}
	}
}
