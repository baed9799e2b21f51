package dispatch

// The finished set: the stream sequences of events this replica delivered
// or dead-lettered, so that copies from a recreated consumer are not sent
// again (see deliver).

// maxFinished bounds the finished set: 65,536 sequences (1 MiB or so). A
// replica that cannot prune it (it lost the pin, or cannot read its
// consumer) starts over with an empty set, which only makes more copies
// after a recreation go out again.
const maxFinished = 1 << 16

// markFinished records that the event of it (from the events consumer) was
// delivered or dead-lettered.
func (w *worker) markFinished(it *item) {
	if it.replay {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.finished) >= maxFinished {
		clear(w.finished)
	}
	w.finished[it.seq] = struct{}{}
}

// finishedBefore reports whether this replica already delivered or
// dead-lettered the event at stream sequence seq. A consumer recreated
// from the recorded floor hands out again the events acknowledged above
// it: those finished while an earlier one was still in flight (deliveries
// run in parallel), those in flight at the deletion, and those acked in
// the last positionInterval. This replica sends none of them twice.
func (w *worker) finishedBefore(seq uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.finished[seq]
	return ok
}

// pruneFinished forgets the finished sequences at or below the ack floor:
// JetStream will not hand those out again while the consumer lives, and a
// recreated one starts above the floor recorded from it.
func (w *worker) pruneFinished(floor uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for seq := range w.finished {
		if seq <= floor {
			delete(w.finished, seq)
		}
	}
}
