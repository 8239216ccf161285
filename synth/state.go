package synth

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Record is one line of the state file, an append-only JSONL audit of a run:
// every request and answer, and each chunk's outcome. Kinds:
//   - "run": the settings of the run that started (or resumed) here;
//   - "request": a chunk asked, attempt A;
//   - "answer": what came back (text and tokens) or the error;
//   - "done": the chunk's questions, final;
//   - "skipped": the chunk gave no usable answer in its attempts, final.
//
// A chunk with a final record is never asked again.
type Record struct {
	Kind     string    `json:"kind"`
	Time     time.Time `json:"time"`
	Chunk    string    `json:"chunk,omitempty"`
	Attempt  int       `json:"attempt,omitempty"`
	Model    string    `json:"model,omitempty"`
	Backend  string    `json:"backend,omitempty"`
	N        int       `json:"n,omitempty"`
	PromptID string    `json:"prompt_sha256,omitempty"`
	System   string    `json:"system,omitempty"`
	User     string    `json:"user,omitempty"`
	Text     string    `json:"text,omitempty"`
	Error    string    `json:"error,omitempty"`
	InTok    int       `json:"input_tokens,omitempty"`
	OutTok   int       `json:"output_tokens,omitempty"`
	Seconds  float64   `json:"seconds,omitempty"`
	// Questions are a done chunk's questions.
	Questions []string `json:"questions,omitempty"`
}

// Outcome is a chunk's final record.
type Outcome struct {
	Questions []string
	Model     string
	Skipped   bool
	InTok     int
	OutTok    int
}

// State is an open state file.
type State struct {
	mu   sync.Mutex
	f    *os.File
	Done map[string]Outcome
	// Runs are the "run" records read back, oldest first.
	Runs []Record
}

// OpenState opens (or creates) a state file and reads back its final
// records. A last line cut short by a killed run is dropped; any other line
// that does not parse is an error naming it.
func OpenState(path string) (*State, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	s := &State{f: f, Done: map[string]Outcome{}}
	if err := s.load(path); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func (s *State) load(path string) error {
	data, err := io.ReadAll(s.f)
	if err != nil {
		return fmt.Errorf("state %s: %w", path, err)
	}
	good := len(data)
	if i := bytes.LastIndexByte(data, '\n'); i+1 != len(data) {
		good = i + 1 // a partial last line: written when the run was killed
	}
	line := 0
	sc := bufio.NewScanner(bytes.NewReader(data[:good]))
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("state %s: line %d: %w", path, line, err)
		}
		switch r.Kind {
		case "run":
			s.Runs = append(s.Runs, r)
		case "done":
			s.Done[r.Chunk] = Outcome{Questions: r.Questions, Model: r.Model, InTok: r.InTok, OutTok: r.OutTok}
		case "skipped":
			s.Done[r.Chunk] = Outcome{Skipped: true, Model: r.Model, InTok: r.InTok, OutTok: r.OutTok}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("state %s: %w", path, err)
	}
	if good != len(data) {
		if err := s.f.Truncate(int64(good)); err != nil {
			return fmt.Errorf("state %s: dropping a partial last line: %w", path, err)
		}
	}
	if _, err := s.f.Seek(int64(good), io.SeekStart); err != nil {
		return fmt.Errorf("state %s: %w", path, err)
	}
	return nil
}

// Append writes one record and fsyncs it, so that a record a run saw
// written survives the run being killed.
func (s *State) Append(r Record) error {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	b = append(b, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("state: closed")
	}
	if _, err := s.f.Write(b); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	switch r.Kind {
	case "done":
		s.Done[r.Chunk] = Outcome{Questions: r.Questions, Model: r.Model, InTok: r.InTok, OutTok: r.OutTok}
	case "skipped":
		s.Done[r.Chunk] = Outcome{Skipped: true, Model: r.Model, InTok: r.InTok, OutTok: r.OutTok}
	}
	return nil
}

// Outcome returns a chunk's final outcome, if it has one.
func (s *State) Outcome(chunk string) (Outcome, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.Done[chunk]
	return o, ok
}

// Close closes the file.
func (s *State) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
