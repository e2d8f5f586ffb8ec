// Two small jobs of PID 1, in one static program:
//   pause            the pod sandbox's process, like Kubernetes' pause image: it holds the pod's namespaces and,
//                    as PID 1 of a pod sharing its process namespace, reaps orphans, until told to stop;
//   pause CMD ARGS…  the init of the test cluster's PID namespace: it runs CMD, passes SIGTERM and SIGINT on
//                    to it, reaps every orphan (containerd's shims re-parent to it) and exits with CMD's status.
//                    When it exits the kernel ends every process left in the namespace.
package main

import (
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	var child *exec.Cmd
	if len(os.Args) > 1 {
		child = exec.Command(os.Args[1], os.Args[2:]...)
		child.Stdin, child.Stdout, child.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := child.Start(); err != nil {
			os.Stderr.WriteString("pause: " + err.Error() + "\n")
			os.Exit(127)
		}
	}
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			if child == nil {
				return
			}
			_ = child.Process.Signal(sig)
			continue
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			if child != nil && pid == child.Process.Pid {
				os.Exit(status.ExitStatus())
			}
		}
	}
}
