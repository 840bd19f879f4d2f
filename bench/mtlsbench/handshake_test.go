package main

import "testing"

// BenchmarkHandshake times one handshake of each kind (client and server
// in this process, over loopback), as the handshake subcommand does:
//
//	go test -run '^$' -bench Handshake -benchtime 2s ./bench/mtlsbench/
func BenchmarkHandshake(b *testing.B) {
	hs, err := newHandshakers(allHandshakeTargets)
	if err != nil {
		b.Fatal(err)
	}
	defer hs.close()
	for _, h := range hs.list {
		b.Run(h.name, func(b *testing.B) {
			if _, err := h.once(b.Context()); err != nil && !h.resume {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := h.once(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
