package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// PropertyCollector paging. vcsim 0.24.2 ignores RetrievePropertiesEx's options.maxObjects
// and has no ContinueRetrievePropertiesEx/CancelRetrievePropertiesEx, so a client written for
// vCenter (which pages a large inventory) would never see a token. The extension asks the
// simulator for the whole result, answers the first maxObjects objects with a token, and
// serves the rest from ContinueRetrievePropertiesEx, as vCenter does.

// retrievePage keeps what a paged retrieval has not answered yet.
type retrievePage struct {
	rest []types.ObjectContent
	max  int
}

// pageRetrieval answers a RetrievePropertiesEx with options.maxObjects > 0.
func (x *extension) pageRetrieval(w http.ResponseWriter, r *http.Request, body []byte, max int) {
	rec := x.forward(r, body)
	if rec.Code != http.StatusOK {
		copyRecorded(w, rec)
		return
	}
	var res methods.RetrievePropertiesExBody
	dec := xml.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.TypeFunc = types.TypeFunc()
	if err := dec.Decode(&soap.Envelope{Body: &res}); err != nil || res.Res == nil {
		copyRecorded(w, rec) // not what we expected: let the client see the simulator's answer
		return
	}
	result := res.Res.Returnval
	if result == nil || len(result.Objects) <= max {
		copyRecorded(w, rec)
		return
	}
	page := x.nextPage(&retrievePage{rest: result.Objects, max: max})
	writeResult(w, "RetrievePropertiesExResponse", &types.RetrievePropertiesExResponse{Returnval: page})
}

// nextPage cuts the next page off p, registering a token when objects remain.
func (x *extension) nextPage(p *retrievePage) *types.RetrieveResult {
	n := p.max
	if n > len(p.rest) {
		n = len(p.rest)
	}
	out := &types.RetrieveResult{Objects: p.rest[:n]}
	p.rest = p.rest[n:]
	if len(p.rest) > 0 {
		x.mu.Lock()
		x.counter++
		token := fmt.Sprintf("hypersdk-sim-page-%d", x.counter)
		x.pages[token] = p
		x.mu.Unlock()
		out.Token = token
	}
	return out
}

// takePage removes and returns the retrieval a token continues, or nil.
func (x *extension) takePage(token string) *retrievePage {
	x.mu.Lock()
	defer x.mu.Unlock()
	p := x.pages[token]
	delete(x.pages, token)
	return p
}

// continueRetrieval answers ContinueRetrievePropertiesEx; an unknown or finished token is
// InvalidArgument, as on vCenter.
func (x *extension) continueRetrieval(w http.ResponseWriter, req *types.ContinueRetrievePropertiesEx) {
	p := x.takePage(req.Token)
	if p == nil {
		fault := &types.InvalidArgument{InvalidProperty: "token"}
		writeFault(w, faultMessage(fault), fault)
		return
	}
	writeResult(w, "ContinueRetrievePropertiesExResponse",
		&types.ContinueRetrievePropertiesExResponse{Returnval: *x.nextPage(p)})
}

// cancelRetrieval answers CancelRetrievePropertiesEx.
func (x *extension) cancelRetrieval(w http.ResponseWriter, req *types.CancelRetrievePropertiesEx) {
	if x.takePage(req.Token) == nil {
		fault := &types.InvalidArgument{InvalidProperty: "token"}
		writeFault(w, faultMessage(fault), fault)
		return
	}
	writeResult(w, "CancelRetrievePropertiesExResponse", &types.CancelRetrievePropertiesExResponse{})
}

// forward runs a SOAP request through the simulator and keeps its answer.
func (x *extension) forward(r *http.Request, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	r2 := r.Clone(r.Context())
	r2.Body = nopCloser{bytes.NewReader(body)}
	r2.ContentLength = int64(len(body))
	x.sim.ServeHTTP(rec, r2)
	return rec
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func copyRecorded(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}
