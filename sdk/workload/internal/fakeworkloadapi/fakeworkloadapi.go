// Package fakeworkloadapi is a minimal SPIFFE Workload API server for tests:
// gRPC over a unix socket, FetchX509SVID streaming only, with the
// "workload.spiffe.io: true" security header required as a real agent
// does. Updates set with SetX509 are pushed to every open stream, so tests
// can exercise SVID rotation.
package fakeworkloadapi

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// SVID is one identity the fake hands out.
type SVID struct {
	ID           spiffeid.ID
	Certificates []*x509.Certificate // leaf first, then intermediates
	Key          crypto.Signer
	Bundle       []*x509.Certificate // roots of ID's trust domain
}

// Update is one X509SVIDResponse: the SVIDs (the first is the default) and
// the bundles of other trust domains keyed by their "spiffe://td" ID.
type Update struct {
	SVIDs     []SVID
	Federated map[string][]*x509.Certificate
}

// Server is the fake Workload API.
type Server struct {
	workload.UnimplementedSpiffeWorkloadAPIServer

	dir  string
	lis  net.Listener
	grpc *grpc.Server

	mu      sync.Mutex
	current *workload.X509SVIDResponse
	changed chan struct{} // closed and replaced on every update
	streams int
}

// Start listens on a new unix socket in a fresh temporary directory and
// serves until Close.
func Start() (*Server, error) {
	dir, err := os.MkdirTemp("", "fwapi")
	if err != nil {
		return nil, fmt.Errorf("fakeworkloadapi: %w", err)
	}
	lis, err := net.Listen("unix", filepath.Join(dir, "agent.sock"))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("fakeworkloadapi: %w", err)
	}
	s := &Server{dir: dir, lis: lis, grpc: grpc.NewServer(), changed: make(chan struct{})}
	workload.RegisterSpiffeWorkloadAPIServer(s.grpc, s)
	go func() { _ = s.grpc.Serve(lis) }()
	return s, nil
}

// Addr is the address for workloadapi.WithAddr ("unix:///…/agent.sock").
func (s *Server) Addr() string { return "unix://" + s.lis.Addr().String() }

// Streams is the number of FetchX509SVID streams currently open.
func (s *Server) Streams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams
}

// Close stops the server and removes the socket directory.
func (s *Server) Close() {
	s.grpc.Stop()
	_ = os.RemoveAll(s.dir)
}

// SetX509 replaces the current X.509 context and pushes it to every open
// stream (and to later ones).
func (s *Server) SetX509(u Update) error {
	resp, err := encode(u)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.current = resp
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

func encode(u Update) (*workload.X509SVIDResponse, error) {
	if len(u.SVIDs) == 0 {
		return nil, errors.New("fakeworkloadapi: an update needs at least one SVID")
	}
	resp := &workload.X509SVIDResponse{FederatedBundles: map[string][]byte{}}
	for _, sv := range u.SVIDs {
		key, err := x509.MarshalPKCS8PrivateKey(sv.Key)
		if err != nil {
			return nil, fmt.Errorf("fakeworkloadapi: key: %w", err)
		}
		resp.Svids = append(resp.Svids, &workload.X509SVID{
			SpiffeId:    sv.ID.String(),
			X509Svid:    concat(sv.Certificates),
			X509SvidKey: key,
			Bundle:      concat(sv.Bundle),
		})
	}
	for td, certs := range u.Federated {
		resp.FederatedBundles[td] = concat(certs)
	}
	return resp, nil
}

func concat(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, c.Raw...)
	}
	return out
}

// FetchX509SVID streams the current X.509 context and every update.
func (s *Server) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	md, ok := metadata.FromIncomingContext(stream.Context())
	if !ok || len(md.Get("workload.spiffe.io")) != 1 || md.Get("workload.spiffe.io")[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	s.mu.Lock()
	s.streams++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.streams--
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		cur, changed := s.current, s.changed
		s.mu.Unlock()
		if cur != nil {
			if err := stream.Send(cur); err != nil {
				return err
			}
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return nil
		}
	}
}
