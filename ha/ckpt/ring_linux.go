package ckpt

import "syscall"

// ringMemory maps size bytes of anonymous memory (pages become resident
// as the ring first writes them) and returns the function that unmaps
// it; a slice from the heap (and a nil function) if the mapping fails.
func ringMemory(size int) ([]byte, func([]byte)) {
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, size), nil
	}
	return b, func(b []byte) { syscall.Munmap(b) }
}
