package dispatch

import (
	"slices"
	"time"
)

// record appends res to the event's bounded attempt history (last
// historyLen attempts of at most 10,000 events) and returns a copy.
func (w *worker) record(id string, res Result) []Attempt {
	a := Attempt{At: time.Now().UTC(), Status: res.Status, Duration: res.Duration.Seconds()}
	if res.Err != nil {
		a.Error = res.Err.Error()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	h, ok := w.history[id]
	if !ok {
		w.histKeys = append(w.histKeys, id)
		if len(w.histKeys) > 10000 {
			delete(w.history, w.histKeys[0])
			w.histKeys = w.histKeys[1:]
		}
	}
	h = append(h, a)
	if len(h) > w.d.o.historyLen {
		h = h[len(h)-w.d.o.historyLen:]
	}
	w.history[id] = h
	return slices.Clone(h)
}

func (w *worker) forget(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// An id is in histKeys exactly when it is in history: most delivered
	// events have no history, and are not looked for among 10,000 keys.
	if _, ok := w.history[id]; !ok {
		return
	}
	delete(w.history, id)
	if i := slices.Index(w.histKeys, id); i >= 0 {
		w.histKeys = slices.Delete(w.histKeys, i, i+1)
	}
}
