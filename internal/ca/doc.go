// Package ca is Gatehouse's workload certificate authority: a root (generated
// and shared by replicas through storage, or imported from upstream) and an
// intermediate signed by it, both ECDSA P-256 with private keys sealed with
// AES-256-GCM under the key-encryption key before they reach storage;
// issuance of X.509 SVIDs (CSR → SVID, the CA alone decides the identity);
// rotation of both authorities on a schedule that is safe with several
// replicas (storage compare-and-swap); the SPIFFE trust bundle; metrics.
//
// See docs/workload.md, section "The CA".
package ca
