module github.com/machine-to-machine/m2m-ssh

go 1.26.8
