package kubelet

import (
	_ "github.com/containernetworking/cni/libcni"
	_ "github.com/virtual-kubelet/virtual-kubelet/node"
	_ "github.com/virtual-kubelet/virtual-kubelet/node/api"
	_ "github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
)
