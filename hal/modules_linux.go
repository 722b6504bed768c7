package hal

import (
	"errors"

	"golang.org/x/sys/unix"
)

func isExist(err error) bool { return errors.Is(err, unix.EEXIST) }
