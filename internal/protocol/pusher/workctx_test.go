package pusher

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWorkCtxCancelReachesWaitersAndChildren(t *testing.T) {
	var w workCtx
	if w.Err() != nil {
		t.Fatal("Err before cancel")
	}
	done := w.Done()
	child, stop := context.WithTimeout(&w, time.Hour)
	defer stop()
	select {
	case <-done:
		t.Fatal("done before cancel")
	default:
	}
	w.cancel()
	w.cancel() // a second cancel must not close twice
	<-done
	<-child.Done()
	if !errors.Is(w.Err(), context.Canceled) || !errors.Is(child.Err(), context.Canceled) {
		t.Fatalf("Err %v, child %v", w.Err(), child.Err())
	}

	var late workCtx
	late.cancel()
	<-late.Done() // made after the cancel: already closed
}

// Contexts derived from a workCtx register through AfterFunc; a stopped
// registration never runs and a live one runs on cancel.
func TestWorkCtxAfterFunc(t *testing.T) {
	var w workCtx
	ran := make(chan string, 3)
	stopA := w.AfterFunc(func() { ran <- "a" })
	w.AfterFunc(func() { ran <- "b" })
	if !stopA() {
		t.Fatal("stop before cancel reported false")
	}
	if stopA() {
		t.Fatal("a second stop reported true")
	}
	child, stopChild := context.WithCancel(&w)
	defer stopChild()
	w.cancel()
	if got := <-ran; got != "b" {
		t.Fatalf("ran %q, want b", got)
	}
	<-child.Done()
	late := w.AfterFunc(func() { ran <- "c" })
	if got := <-ran; got != "c" {
		t.Fatalf("ran %q after cancel, want c", got)
	}
	if late() {
		t.Fatal("stop after the function started reported true")
	}
	select {
	case got := <-ran:
		t.Fatalf("%q ran although stopped", got)
	default:
	}
}
