package runner

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress shows where a run is: on a terminal a bar redrawn in place, in a
// log one line per phase and one every 10 seconds.
type progress struct {
	w        io.Writer
	terminal bool
	total    time.Duration
	began    time.Time
	requests *atomic.Int64
	errors   *atomic.Int64

	// mu guards label and every write to w: the ticker's redraw and a
	// new phase's line come from two goroutines.
	mu    sync.Mutex
	label string
	done  chan struct{}
	wg    sync.WaitGroup
}

func newProgress(w io.Writer, terminal bool, total time.Duration, requests, errors *atomic.Int64) *progress {
	p := &progress{w: w, terminal: terminal, total: total, began: time.Now(), requests: requests, errors: errors, done: make(chan struct{})}
	p.wg.Add(1)
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer p.wg.Done()
	every := 10 * time.Second
	if p.terminal {
		every = 250 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
			p.draw()
		}
	}
}

func (p *progress) phase(label string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.label = label
	if !p.terminal {
		fmt.Fprintf(p.w, "%s  %s\n", p.line(), label)
		return
	}
	p.drawLocked()
}

// line is the status common to both forms.
func (p *progress) line() string {
	el := time.Since(p.began).Truncate(time.Second)
	return fmt.Sprintf("[%s/~%s] %d requests, %d errors", el, p.total.Truncate(time.Second), p.requests.Load(), p.errors.Load())
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drawLocked()
}

// drawLocked writes the status; p.mu is held.
func (p *progress) drawLocked() {
	label := p.label
	if !p.terminal {
		fmt.Fprintf(p.w, "%s  %s\n", p.line(), label)
		return
	}
	const width = 30
	frac := 0.0
	if p.total > 0 {
		frac = min(1, float64(time.Since(p.began))/float64(p.total))
	}
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r\033[K[%s%s] %3.0f%% %s  %s", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, p.line(), label)
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, "%s  done\n", p.line())
}
