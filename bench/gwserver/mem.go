package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
)

// Mem is the answer of GET /mem: this process's memory, as the Go runtime
// and the kernel see it.
type Mem struct {
	HeapInuseBytes uint64 `json:"heap_inuse_bytes"` // runtime.MemStats.HeapInuse
	SysBytes       uint64 `json:"sys_bytes"`        // runtime.MemStats.Sys: all memory obtained from the OS
	RSSBytes       int64  `json:"rss_bytes"`        // /proc/self/status VmRSS (-1: unavailable)
	HWMBytes       int64  `json:"hwm_bytes"`        // /proc/self/status VmHWM, the RSS high-water mark (-1: unavailable)
	Goroutines     int    `json:"goroutines"`
	NumGC          uint32 `json:"num_gc"`
}

// memHandler serves Mem as JSON. ReadMemStats stops the world briefly; the
// bench script calls it a couple of times per run.
func memHandler(w http.ResponseWriter, _ *http.Request) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := Mem{HeapInuseBytes: ms.HeapInuse, SysBytes: ms.Sys, RSSBytes: -1, HWMBytes: -1,
		Goroutines: runtime.NumGoroutine(), NumGC: ms.NumGC}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		if rss, hwm, err := parseStatus(b); err == nil {
			m.RSSBytes, m.HWMBytes = rss, hwm
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(m)
}

// parseStatus reads VmRSS and VmHWM, in bytes, from the text of
// /proc/<pid>/status ("VmRSS:\t   1234 kB" lines). Both must be present
// exactly once, as decimal kB that fit in an int64 once in bytes.
func parseStatus(b []byte) (rss, hwm int64, err error) {
	rss, hwm = -1, -1
	for line := range bytes.Lines(b) {
		key, val, ok := bytes.Cut(bytes.TrimSuffix(line, []byte("\n")), []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(key) {
		case "VmRSS":
			dst = &rss
		case "VmHWM":
			dst = &hwm
		default:
			continue
		}
		if *dst != -1 {
			return -1, -1, fmt.Errorf("duplicate %s", key)
		}
		if *dst, err = parseKB(val); err != nil {
			return -1, -1, fmt.Errorf("%s: %w", key, err)
		}
	}
	if rss == -1 || hwm == -1 {
		return -1, -1, errors.New("VmRSS or VmHWM missing")
	}
	return rss, hwm, nil
}

// parseKB parses "<spaces or tabs><digits> kB" into bytes.
func parseKB(v []byte) (int64, error) {
	v = bytes.TrimLeft(v, " \t")
	num, ok := bytes.CutSuffix(v, []byte(" kB"))
	if !ok || len(num) == 0 || len(num) > 15 {
		return 0, errors.New("not a size in kB")
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, errors.New("not a size in kB")
		}
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size: %w", err)
	}
	return n * 1024, nil // at most 15 digits: no overflow
}
