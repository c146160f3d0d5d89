function o(){var h=location.hash.slice(1),e=h&&document.getElementById(h);if(e&&e.tagName==='DETAILS')e.open=true}addEventListener('hashchange',o);o();
