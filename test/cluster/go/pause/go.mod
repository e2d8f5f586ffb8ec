module sidekey.test/pause

go 1.24
