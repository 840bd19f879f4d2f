package decisionlog

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	randv2 "math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults and bounds of Config.
const (
	DefaultRing  = 1000
	DefaultQueue = 4096
	// MaxRing and MaxQueue bound the memory a configuration can ask for.
	MaxRing  = 1 << 20
	MaxQueue = 1 << 20
	// MaxLine is the longest JSON line Read accepts. The writer never
	// writes a longer one: an oversized entry loses its context and
	// attributes (an error says so), and is dropped if still too long.
	MaxLine = 1 << 20
	// FlushInterval is the longest a written entry waits in the buffer.
	FlushInterval = 200 * time.Millisecond
)

// Config configures a Logger.
type Config struct {
	// Path is "" for no file, "-" for stdout, else a file opened
	// O_APPEND|O_CREATE with mode 0600.
	Path string
	// Writer, when set, overrides Path (tests).
	Writer io.Writer
	// Ring is the size of the in-memory ring of recent decisions: 0 means
	// DefaultRing, < 0 keeps none.
	Ring int
	// Sample is the fraction (0..1) of allows logged; 1 logs every allow.
	// Denies and shadow disagreements are always logged.
	Sample float64
	// Queue bounds the queue to the writer goroutine (0 means
	// DefaultQueue). When it is full the entry is dropped and counted.
	Queue int
	// Rand returns a number in [0, 1) for sampling (tests); default
	// math/rand/v2.Float64.
	Rand func() float64
}

// Logger records decisions. Its methods are safe for concurrent use and on
// a nil *Logger (which records nothing).
type Logger struct {
	log    *slog.Logger
	sample float64
	rand   func() float64

	ringMu sync.Mutex
	ring   []Entry // circular; next is the slot of the next entry
	next   int
	count  int

	qMu    sync.RWMutex // guards closed against sends on a closed q
	closed bool
	q      chan *Entry // nil when there is no writer
	done   chan struct{}
	w      io.Writer
	file   *os.File // owned, closed by Close
	// flushErr is the error of the final flush, read after done closes.
	flushErr error

	dropped   atomic.Uint64
	writeErrs atomic.Uint64
	closeOnce sync.Once
	closeErr  error
}

// New validates cfg, opens the output and starts the writer goroutine.
// logger receives write errors (once); nil discards them.
func New(cfg Config, logger *slog.Logger) (*Logger, error) {
	if cfg.Sample < 0 || cfg.Sample > 1 || cfg.Sample != cfg.Sample {
		return nil, fmt.Errorf("decisionlog: sample %v outside [0, 1]", cfg.Sample)
	}
	ring := cfg.Ring
	switch {
	case ring == 0:
		ring = DefaultRing
	case ring < 0:
		ring = 0
	case ring > MaxRing:
		return nil, fmt.Errorf("decisionlog: ring %d exceeds %d", ring, MaxRing)
	}
	queue := cfg.Queue
	switch {
	case queue == 0:
		queue = DefaultQueue
	case queue < 0 || queue > MaxQueue:
		return nil, fmt.Errorf("decisionlog: queue %d outside [1, %d]", queue, MaxQueue)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Logger{log: logger, sample: cfg.Sample, rand: cfg.Rand}
	if l.rand == nil {
		l.rand = randv2.Float64
	}
	if ring > 0 {
		l.ring = make([]Entry, ring)
	}
	switch {
	case cfg.Writer != nil:
		l.w = cfg.Writer
	case cfg.Path == "":
	case cfg.Path == "-":
		l.w = os.Stdout
	default:
		f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("decisionlog: open %s: %w", cfg.Path, err)
		}
		l.w, l.file = f, f
	}
	if l.w != nil {
		l.q = make(chan *Entry, queue)
		l.done = make(chan struct{})
		go l.run()
	}
	return l, nil
}

// Log records a decision without blocking: sampled-out allows are skipped,
// the entry is deep-copied and redacted (its context and attributes are
// omitted when over MaxEntryAttrs), stored in the ring and queued for
// the writer (dropped and counted when the queue is full or the Logger is
// closed). A missing ID or time is filled in. e is not modified.
func (l *Logger) Log(e *Entry) {
	if l == nil || e == nil {
		return
	}
	if e.Allow && !e.disagrees() && !l.sampled() {
		return
	}
	c := bounded(e).clone()
	if c.Time.IsZero() {
		c.Time = time.Now()
	}
	c.Time = c.Time.UTC()
	if c.ID == "" {
		c.ID = newID()
	}
	l.push(c)
	if l.q == nil {
		return
	}
	l.qMu.RLock()
	defer l.qMu.RUnlock()
	if l.closed {
		l.dropped.Add(1)
		return
	}
	select {
	case l.q <- &c:
	default:
		l.dropped.Add(1)
	}
}

func (l *Logger) sampled() bool {
	switch {
	case l.sample >= 1:
		return true
	case l.sample <= 0:
		return false
	}
	return l.rand() < l.sample
}

func (l *Logger) push(e Entry) {
	if len(l.ring) == 0 {
		return
	}
	l.ringMu.Lock()
	l.ring[l.next] = e
	l.next = (l.next + 1) % len(l.ring)
	if l.count < len(l.ring) {
		l.count++
	}
	l.ringMu.Unlock()
}

// Recent returns the ring's entries matching f, newest first, at most
// f.Limit of them when f.Limit > 0. The entries are copies.
func (l *Logger) Recent(f Filter) []Entry {
	if l == nil || len(l.ring) == 0 {
		return nil
	}
	l.ringMu.Lock()
	defer l.ringMu.Unlock()
	var out []Entry
	for i := 1; i <= l.count; i++ {
		e := &l.ring[(l.next-i+len(l.ring))%len(l.ring)]
		if !f.Match(e) {
			continue
		}
		out = append(out, e.clone())
		if f.Limit > 0 && len(out) >= f.Limit {
			break
		}
	}
	return out
}

// Dropped is the number of entries that were not written: queue full,
// logged after Close, too large, or lost to a write error.
func (l *Logger) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// WriteErrors is the number of failed writes or flushes to the output.
func (l *Logger) WriteErrors() uint64 {
	if l == nil {
		return 0
	}
	return l.writeErrs.Load()
}

// Close stops accepting entries, writes and flushes every queued entry,
// and closes the file it opened. It returns the final flush or close
// error; calling it again returns the same result.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.closeOnce.Do(func() {
		if l.q == nil {
			return
		}
		l.qMu.Lock()
		l.closed = true
		close(l.q)
		l.qMu.Unlock()
		<-l.done
		var errs []error
		if l.flushErr != nil {
			errs = append(errs, fmt.Errorf("decisionlog: flush: %w", l.flushErr))
		}
		if l.file != nil {
			if err := l.file.Close(); err != nil {
				errs = append(errs, fmt.Errorf("decisionlog: close: %w", err))
			}
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// writer is the state of the writer goroutine.
type writer struct {
	l        *Logger
	bw       *bufio.Writer
	pending  uint64 // entries buffered since the last successful flush
	reported bool   // a write error has been logged
}

func (l *Logger) run() {
	defer close(l.done)
	w := &writer{l: l, bw: bufio.NewWriterSize(l.w, 64<<10)}
	tick := time.NewTicker(FlushInterval)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-l.q:
			if !ok {
				l.flushErr = w.flush()
				return
			}
			w.write(e)
		case <-tick.C:
			_ = w.flush()
		}
	}
}

func (w *writer) write(e *Entry) {
	line, err := encodeLine(e)
	if err != nil {
		w.l.dropped.Add(1)
		w.fail(err)
		return
	}
	if _, err := w.bw.Write(line); err != nil {
		w.lost(err, 1)
		return
	}
	w.pending++
}

func (w *writer) flush() error {
	if w.bw.Buffered() == 0 {
		return nil
	}
	if err := w.bw.Flush(); err != nil {
		w.lost(err, 0)
		return err
	}
	w.pending = 0
	return nil
}

// lost accounts for a failed write: the buffer is discarded (bufio keeps
// its error forever otherwise) and its entries, plus extra, are dropped.
func (w *writer) lost(err error, extra uint64) {
	w.l.writeErrs.Add(1)
	w.l.dropped.Add(w.pending + extra)
	w.pending = 0
	w.bw.Reset(w.l.w)
	w.fail(err)
}

// fail logs the first write error only; the counters carry the rest.
func (w *writer) fail(err error) {
	if w.reported {
		return
	}
	w.reported = true
	w.l.log.Error("decision log write failed; further errors are only counted", "error", err)
}

// encodeLine returns e as one JSON line of at most MaxLine bytes (plus the
// newline). An oversized entry is written without its context and
// attributes, with an error saying so.
func encodeLine(e *Entry) ([]byte, error) {
	b, err := marshalEntry(e)
	if err != nil {
		return nil, fmt.Errorf("decisionlog: encode %s: %w", e.ID, err)
	}
	if len(b) > MaxLine {
		s := *e
		s.Context, s.Principal.Attrs, s.Resource.Attrs = nil, nil, nil
		s.Errors = append(append([]string(nil), e.Errors...), errTooLarge)
		if b, err = json.Marshal(&s); err != nil {
			return nil, fmt.Errorf("decisionlog: encode %s: %w", e.ID, err)
		}
		if len(b) > MaxLine {
			return nil, fmt.Errorf("decisionlog: entry %s is %d bytes, over %d", e.ID, len(b), MaxLine)
		}
	}
	return append(b, '\n'), nil
}

// newID returns a fresh decision id, "dec_" and 16 random hex digits.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return "dec_" + hex.EncodeToString(b[:])
}
